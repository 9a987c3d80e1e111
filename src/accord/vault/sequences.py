"""Atomic sequences: numbers no two callers ever share, across processes, hosts and Redis restarts.

The database row of a sequence holds ``reserved``: every number ever issued is at most that. A
caller reserves a range by raising it (``reserved = reserved + k``, one row update), which makes
``(old, new]`` exclusively its own. Without Redis each call reserves exactly what it hands out. With
Redis, a range is *donated* to a Redis hash that hands numbers out one step at a time, so the
database is written once per lease, not once per number (accord.vault._redis.sequences).
"""

from __future__ import annotations

import json

from sqlalchemy.ext.asyncio import AsyncEngine

from accord.bus.redis_url import resolve_redis_url
from accord.store.engine import create_engine, resolve_db_url
from accord.store.migrate import upgrade
from accord.vault._redis.gate import RedisGate
from accord.vault._redis.scripts import INSTALL_RANGE, NEXT
from accord.vault._sql import sequences as sql
from accord.vault.backends import Counters, counters_for
from accord.vault.records import VAULT_NAMESPACE, sequence_name
from accord.vault.types import InvalidInputError, check_sequence_name

__all__ = ["DEFAULT_LEASE", "INSTALL_RANGE", "NEXT", "VAULT_NAMESPACE", "Sequences", "sequence_name"]

DEFAULT_LEASE = 100
MAX_BATCH = 1_000_000


class Sequences:
    """``await seq.next("ORDER")`` — Redis when configured and reachable, the database otherwise."""

    def __init__(self, engine: AsyncEngine, counters: Counters, *, lease: int = DEFAULT_LEASE) -> None:
        self.engine = engine
        self.lease = check_lease(lease)
        self._counters = counters
        self._gate: RedisGate | None = None  # set when this object opened its own connections

    @classmethod
    async def connect(
        cls, db_url: str | None = None, redis_url: str | None = None, *, lease: int = DEFAULT_LEASE
    ) -> Sequences:
        """Open sequences on the database and Redis URLs (defaults: ACCORD_DB_URL, ACCORD_REDIS_URL)."""
        check_lease(lease)
        engine = create_engine(resolve_db_url(db_url))
        gate = RedisGate(resolve_redis_url(redis_url))
        try:
            await upgrade(engine)
            await gate.bind(engine)
            seq = cls(engine, counters_for(engine, gate, lease=lease)[0], lease=lease)
        except BaseException:
            await gate.aclose()
            await engine.dispose()
            raise
        seq._gate = gate
        return seq

    async def aclose(self) -> None:
        if self._gate is not None:
            await self._gate.aclose()
            await self.engine.dispose()

    async def __aenter__(self) -> Sequences:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def next(self, name: str) -> int:
        return (await self.next_many(name, 1))[0]

    async def next_many(self, name: str, count: int) -> range:
        """``count`` consecutive numbers of ``name``, none ever issued before."""
        check_sequence_name(name)
        if not isinstance(count, int) or not 1 <= count <= MAX_BATCH:
            raise InvalidInputError(f"count must be an int from 1 to {MAX_BATCH}, got {json.dumps(count)}")
        return await self._counters.take(name, count)

    async def reserved(self, name: str) -> int:
        """The high-water mark in the database: no number above it was ever issued."""
        return await sql.reserved(self.engine, check_sequence_name(name))


def check_lease(lease: int) -> int:
    if lease < 1:
        raise InvalidInputError(f"lease must be at least 1, got {lease}")
    return lease
