"""Sequence numbers through Redis: a range the database reserved is handed out one script step at a time.

Every number comes from a range the database gave to exactly one caller, which donates it to at
most one Redis hash; inside a hash the counter only moves forward, and a stale donation (below the
installed range) is refused by INSTALL_RANGE. So numbers can be skipped, never issued twice.
"""

from __future__ import annotations

import asyncio
import collections
import time

from accord.bus.redis_conn import RedisClient
from accord.core.redis_keys import RedisKeys
from accord.store.engine import write_tx
from accord.vault._redis.scripts import INSTALL_RANGE, NEXT
from accord.vault._sql.sequences import SqlCounters, reserve_range
from accord.vault.types import SequenceError

__all__ = ["MAX_LEASE", "RedisCounters"]

MAX_LEASE = 10_000
_MAX_REFILLS = 50
_BUSY_S = 1.0  # refills of one name closer together than this double its lease


class RedisCounters:
    """Numbers from a Redis hash per name, refilled with leases from the database (``db``)."""

    def __init__(self, client: RedisClient, db: SqlCounters, *, lease: int, keys: RedisKeys) -> None:
        self.lease = lease
        self._prefix = keys.sequence_prefix
        self._db = db
        self._next = client.register_script(NEXT)
        self._install = client.register_script(INSTALL_RANGE)
        self._locks: dict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self._installs: collections.Counter[str] = collections.Counter()
        self._leases: dict[str, tuple[float, int]] = {}  # name -> (time of the last refill, its lease)

    async def take(self, name: str, count: int) -> range:
        for _ in range(_MAX_REFILLS):
            last = int(await self._next(keys=[self._prefix + name], args=[count]))
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
            async with write_tx(self._db.engine) as conn:
                numbers = await reserve_range(conn, name, max(self._lease_for(name), needed))
            await self._install(keys=[self._prefix + name], args=[numbers.start - 1, numbers.stop - 1])
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
