"""The vault's two backends, each behind a small Protocol, and the one place that chooses them.

Without Redis the database alone does everything. With Redis, Redis goes first and the database
is the fallback, the way ``FallbackChangeBus`` falls back from Redis pub/sub: after a Redis
failure the call is served by the database and Redis is skipped for a growing pause
(``RedisGate``), so an outage costs one error, not one per call. Falling back is always safe: the
database decides every get-or-create through its unique constraints, and sequences only hand out
numbers from ranges the database reserved. Nothing outside this module asks whether Redis is there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from accord.vault._redis.gate import REDIS_FAILURES, RedisGate
from accord.vault._redis.mappings import RedisMappings, RedisOverSqlMappings
from accord.vault._redis.sequences import RedisCounters
from accord.vault._sql.mappings import SqlMappings
from accord.vault._sql.sequences import SqlCounters
from accord.vault.records import Item, Lookup
from accord.vault.sealing import Sealer

__all__ = [
    "Counters",
    "FallbackCounters",
    "FallbackMappings",
    "MappingBackend",
    "counters_for",
    "mappings_for",
]

T = TypeVar("T")


class Counters(Protocol):
    """Where sequence numbers come from."""

    async def take(self, name: str, count: int) -> range:
        """``count`` consecutive numbers of ``name`` that nobody was ever given."""
        ...


class MappingBackend(Protocol):
    """Where mappings live: get-or-create by fingerprint, look-up by token, expiry of idle ones."""

    async def tokens_for(self, scope: str, items: Sequence[Item], ttl: int) -> dict[bytes, str]:
        """Every item's token by field, persisted in the database before this returns."""
        ...

    async def lookup(self, scope: str, tokens: Sequence[str], ttl: int) -> Lookup: ...

    async def invalidate(self) -> int:
        """Drop whatever is cached in front of the database (after a key rotation); returns how many keys."""
        ...

    async def expire_idle(self, ttl: int, *, limit: int) -> int:
        """Expire mappings idle longer than ``ttl`` seconds (at most ``limit`` candidates); returns how many."""
        ...


async def _redis_first(gate: RedisGate, redis: Callable[[], Awaitable[T]], db: Callable[[], Awaitable[T]]) -> T:
    if gate.usable() is not None:
        try:
            result = await redis()
        except REDIS_FAILURES as exc:
            gate.failed(exc)
        else:
            gate.succeeded()
            return result
    return await db()


class FallbackCounters:
    def __init__(self, primary: RedisCounters, fallback: SqlCounters, gate: RedisGate) -> None:
        self.primary = primary
        self.fallback = fallback
        self._gate = gate

    async def take(self, name: str, count: int) -> range:
        return await _redis_first(
            self._gate, lambda: self.primary.take(name, count), lambda: self.fallback.take(name, count)
        )


class FallbackMappings:
    def __init__(self, primary: RedisOverSqlMappings, fallback: SqlMappings, gate: RedisGate) -> None:
        self.primary = primary
        self.fallback = fallback
        self._gate = gate

    async def tokens_for(self, scope: str, items: Sequence[Item], ttl: int) -> dict[bytes, str]:
        return await _redis_first(
            self._gate,
            lambda: self.primary.tokens_for(scope, items, ttl),
            lambda: self.fallback.tokens_for(scope, items, ttl),
        )

    async def lookup(self, scope: str, tokens: Sequence[str], ttl: int) -> Lookup:
        return await _redis_first(
            self._gate,
            lambda: self.primary.lookup(scope, tokens, ttl),
            lambda: self.fallback.lookup(scope, tokens, ttl),
        )

    async def expire_idle(self, ttl: int, *, limit: int) -> int:
        """No fallback here: while Redis is unreachable the database alone cannot tell which mappings are
        in use (their last uses are recorded in Redis), so the sweep waits for Redis."""

        async def skip() -> int:
            return 0

        return await _redis_first(self._gate, lambda: self.primary.expire_idle(ttl, limit=limit), skip)

    async def invalidate(self) -> int:
        return await self.primary.redis.invalidate()


def counters_for(engine: AsyncEngine, gate: RedisGate, *, lease: int) -> tuple[Counters, RedisCounters | None]:
    """The sequence backend: the database alone, or Redis over it. Also returns the Redis side, if any,
    which mappings need to refill the ranges their allocation script draws from."""
    db = SqlCounters(engine)
    if gate.client is None:
        return db, None
    redis = RedisCounters(gate.client, db, lease=lease, keys=gate.keys)
    return FallbackCounters(redis, db, gate), redis


def mappings_for(
    engine: AsyncEngine, gate: RedisGate, sealer: Sealer, redis_counters: RedisCounters | None
) -> MappingBackend:
    """The mapping backend: the database alone, or Redis over it (with the database as the fallback)."""
    db = SqlMappings(engine, sealer)
    if gate.client is None or redis_counters is None:
        return db
    primary = RedisOverSqlMappings(RedisMappings(gate.client, gate.keys), db, redis_counters, gate)
    return FallbackMappings(primary, db, gate)
