"""Atomic sequences: numbers no two callers ever share, across processes, hosts and Redis restarts.

The database row of a sequence holds ``reserved``: every number ever issued is at most that. A
caller reserves a range by raising it (``reserved = reserved + k``, one row update), which makes
``(old, new]`` exclusively its own. Without Redis each call reserves exactly what it hands out. With
Redis, a range is *donated* to a Redis hash that hands numbers out one ``HINCRBY``-like step at a
time (the NEXT script), so the database is written once per lease, not once per number.

Why this never repeats a number: every number comes from a range the database gave to exactly one
caller, and that caller donates it to at most one Redis hash (or uses it itself). Inside a hash the
counter only moves forward. When Redis restarts empty the hash is gone; the next caller finds it
missing and donates a fresh range, which lies above everything issued before. Stale donations (a
range below the one installed) are refused by the INSTALL script and simply never used: numbers
can be skipped (gaps after restarts or lost races), never issued twice.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from accord.bus.redis_conn import resolve_redis_url
from accord.core.redis_keys import SEQUENCE_PREFIX
from accord.store.engine import create_engine, read_tx, resolve_db_url, write_tx
from accord.store.migrate import upgrade
from accord.vault import tables as t
from accord.vault._redis import REDIS_FAILURES, RedisGate
from accord.vault.types import InvalidInputError, SequenceError, check_sequence_name

__all__ = [
    "DEFAULT_LEASE",
    "INSTALL_RANGE",
    "NEXT",
    "VAULT_NAMESPACE",
    "Sequences",
    "lock_sequences",
    "reserve_range",
    "sequence_name",
]

DEFAULT_LEASE = 100
MAX_LEASE = 10_000
VAULT_NAMESPACE = "vault."
MAX_BATCH = 1_000_000
_MAX_REFILLS = 50
_BUSY_S = 1.0  # refills of one name closer together than this double its lease

# KEYS[1] the sequence hash; ARGV[1] how many numbers to take.
# Returns the last number taken, or 0 when the hash is missing (Redis restarted) or its range has
# too little room left; then nothing changed and the caller donates a range with INSTALL_RANGE.
NEXT = """
local max = tonumber(redis.call('HGET', KEYS[1], 'max'))
if not max then return 0 end
local n = tonumber(redis.call('HGET', KEYS[1], 'n')) + tonumber(ARGV[1])
if n > max then return 0 end
redis.call('HSET', KEYS[1], 'n', n)
return n
"""

# KEYS[1] the sequence hash; ARGV[1] lo, ARGV[2] hi: the database reserved (lo, hi] for this caller alone.
# Seeds a missing hash, extends a range that ends at lo, or jumps past an older range (its rest is
# skipped). A range below the installed one is refused (returns 0) and never used.
INSTALL_RANGE = """
local max = tonumber(redis.call('HGET', KEYS[1], 'max'))
local lo = tonumber(ARGV[1])
if max and lo < max then return 0 end
if max and lo == max then
  redis.call('HSET', KEYS[1], 'max', ARGV[2])
else
  redis.call('HSET', KEYS[1], 'n', ARGV[1], 'max', ARGV[2])
end
return 1
"""


def sequence_name(token_type: str) -> str:
    """The vault numbers each token type in its own sequence, apart from an application's sequences."""
    return VAULT_NAMESPACE + token_type


def _insert(conn: AsyncConnection) -> type[postgresql.Insert] | type[sqlite.Insert]:
    return postgresql.Insert if conn.dialect.name == "postgresql" else sqlite.Insert


async def reserve_range(conn: AsyncConnection, name: str, count: int) -> range:
    """Raise the high-water mark of ``name`` by ``count`` inside the caller's transaction; the range is ours alone."""
    insert = _insert(conn)(t.sequence).values(type=name, reserved=count)
    stmt = insert.on_conflict_do_update(
        index_elements=[t.sequence.c.type], set_={"reserved": t.sequence.c.reserved + count}
    ).returning(t.sequence.c.reserved)
    top = int((await conn.execute(stmt)).scalar_one())
    return range(top - count + 1, top + 1)


async def lock_sequences(conn: AsyncConnection, names: Iterable[str]) -> None:
    """Lock the rows of ``names`` (creating missing ones) in a fixed order, so two writers cannot deadlock."""
    for name in sorted(set(names)):
        await reserve_range(conn, name, 0)


class Sequences:
    """``await seq.next("ORDER")`` — Redis when configured and reachable, the database otherwise."""

    def __init__(self, engine: AsyncEngine, gate: RedisGate, *, lease: int = DEFAULT_LEASE) -> None:
        if lease < 1:
            raise InvalidInputError(f"lease must be at least 1, got {lease}")
        self.engine = engine
        self.lease = lease
        self._gate = gate
        self._owned = False
        self._next = gate.client.register_script(NEXT) if gate.client else None
        self._install = gate.client.register_script(INSTALL_RANGE) if gate.client else None
        self._locks: dict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self._installs: collections.Counter[str] = collections.Counter()
        self._leases: dict[str, tuple[float, int]] = {}  # name -> (time of the last refill, its lease)

    @classmethod
    async def connect(
        cls, db_url: str | None = None, redis_url: str | None = None, *, lease: int = DEFAULT_LEASE
    ) -> Sequences:
        """Open sequences on the database and Redis URLs (defaults: ACCORD_DB_URL, ACCORD_REDIS_URL)."""
        engine = create_engine(resolve_db_url(db_url))
        gate = RedisGate(resolve_redis_url(redis_url))
        try:
            await upgrade(engine)
            seq = cls(engine, gate, lease=lease)
        except BaseException:
            await gate.aclose()
            await engine.dispose()
            raise
        seq._owned = True
        return seq

    async def aclose(self) -> None:
        if self._owned:
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
            raise InvalidInputError(f"count must be an int from 1 to {MAX_BATCH}, got {count!r}")
        if self._gate.usable() is not None:
            try:
                numbers = await self._take_redis(name, count)
            except REDIS_FAILURES as exc:
                self._gate.failed(exc)
            else:
                self._gate.succeeded()
                return numbers
        async with write_tx(self.engine) as conn:
            return await reserve_range(conn, name, count)

    async def reserved(self, name: str) -> int:
        """The high-water mark in the database: no number above it was ever issued."""
        check_sequence_name(name)
        async with read_tx(self.engine) as conn:
            value = await conn.scalar(sa.select(t.sequence.c.reserved).where(t.sequence.c.type == name))
        return int(value or 0)

    async def _take_redis(self, name: str, count: int) -> range:
        assert self._next is not None
        for _ in range(_MAX_REFILLS):
            last = int(await self._next(keys=[SEQUENCE_PREFIX + name], args=[count]))
            if last:
                return range(last - count + 1, last + 1)
            await self.refill(name, count)
        raise SequenceError(f"sequence {name!r}: could not get {count} numbers from Redis after {_MAX_REFILLS} leases")

    async def refill(self, name: str, needed: int) -> None:
        """Donate a fresh database range of at least ``needed`` numbers to the Redis hash of ``name``.

        Tasks of one process share a refill: whoever waited on the lock while another refilled returns at once.
        """
        seen = self._installs[name]
        async with self._locks[name]:
            if self._installs[name] != seen:
                return
            async with write_tx(self.engine) as conn:
                numbers = await reserve_range(conn, name, max(self._lease_for(name), needed))
            assert self._install is not None
            await self._install(keys=[SEQUENCE_PREFIX + name], args=[numbers.start - 1, numbers.stop - 1])
            self._installs[name] += 1

    def _lease_for(self, name: str) -> int:
        """The configured lease, doubled (up to MAX_LEASE) for each refill that follows the last one closely.

        A busy sequence then writes the database about once a second, not once per ``lease`` numbers;
        the price is a bigger gap of skipped numbers if Redis restarts.
        """
        now = time.monotonic()
        last, lease = self._leases.get(name, (-_BUSY_S, self.lease))
        lease = min(lease * 2, max(MAX_LEASE, self.lease)) if now - last < _BUSY_S else self.lease
        self._leases[name] = (now, lease)
        return lease
