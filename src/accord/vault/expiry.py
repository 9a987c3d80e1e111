"""Retention: mappings unused for longer than the configured idle time expire.

With Redis, last uses are recorded there (the database is only told lazily), so a sweep first asks
Redis about every mapping the database thinks is idle: recently used ones get their database
timestamp refreshed, the rest are removed from Redis and then tombstoned in the database. A
tombstone is only written while the row's last use is still old, and every path that hands out
a mapping after a Redis miss refreshes that timestamp in the same statement that reads the row,
so a mapping can never be expired and handed out at the same time.

If Redis is configured but unreachable the sweep does nothing: the database alone cannot tell
which mappings are in use.
"""

from __future__ import annotations

import collections
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from accord.store.engine import read_tx, write_tx
from accord.vault import sql
from accord.vault._redis import REDIS_FAILURES, RedisGate
from accord.vault.cache import RedisMappings

__all__ = ["expire_idle"]


async def expire_idle(
    engine: AsyncEngine, gate: RedisGate, redis: RedisMappings | None, ttl: int, *, limit: int
) -> int:
    """One sweep of at most ``limit`` candidates; returns how many mappings expired."""
    if gate.configured and (redis is None or gate.usable() is None):
        return 0
    now = sql.now_utc()
    before = now - timedelta(seconds=ttl)
    # With Redis, look at rows idle for half the ttl too, so their database timestamps keep up with
    # Redis and a Redis restart cannot make a busy mapping look idle for long.
    check_before = now - timedelta(seconds=ttl / 2) if redis is not None else before
    async with read_tx(engine) as conn:
        candidates = await sql.select_idle(conn, check_before, limit)
    by_scope: dict[str, list[tuple[str, bytes]]] = collections.defaultdict(list)
    for scope, token, field in candidates:
        by_scope[scope].append((token, field))
    try:
        alive, dead = await _ask_redis(redis, by_scope, ttl)
    except REDIS_FAILURES as exc:
        gate.failed(exc)
        return 0
    expired = 0
    async with write_tx(engine) as conn:
        for scope, by_time in alive.items():
            for seen_at, tokens in by_time.items():
                await sql.touch_tokens(conn, scope, tokens, seen_at)
        for scope, tokens in dead.items():
            expired += await sql.tombstone(conn, scope, tokens, before, now)
    return expired


async def _ask_redis(
    redis: RedisMappings | None, by_scope: dict[str, list[tuple[str, bytes]]], ttl: int
) -> tuple[dict[str, dict[datetime, list[str]]], dict[str, list[str]]]:
    """Split candidates into used-recently (by Redis' record, with when) and idle (now gone from Redis)."""
    alive: dict[str, dict[datetime, list[str]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    dead: dict[str, list[str]] = collections.defaultdict(list)
    for scope, entries in by_scope.items():
        if redis is None:
            dead[scope] = [token for token, _ in entries]
            continue
        used = await redis.sweep(scope, entries, ttl)
        for (token, _), seen in zip(entries, used, strict=True):
            if seen:
                alive[scope][datetime.fromtimestamp(seen, UTC)].append(token)
            else:
                dead[scope].append(token)
    return alive, dead
