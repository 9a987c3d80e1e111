"""The role of a shared cache of current values, and the one a process without Redis has.

A process always holds a ValueCache, so nothing branches on whether Redis is there: without Redis
the cache is NullValueCache, which keeps nothing and never has a snapshot to offer.
"""

from __future__ import annotations

from typing import Protocol

from accord.store.types import Change, Entry, KVStore


class ValueCache(Protocol):
    """Current values shared by a fleet, so cold starts (or starts while the database is down) need not hit it."""

    async def apply(self, change: Change, entry: Entry | None) -> None:
        """Record a committed change (best effort: the database already has it)."""
        ...

    async def apply_and_publish(self, change: Change, entry: Entry | None) -> bool:
        """Record a committed change and announce it on the bus in the same round trip, if this cache can.

        True when it was announced; False leaves announcing to the bus (no shared cache, or it is down).
        """
        ...

    async def refresh(self, store: KVStore, checked_revision: int) -> None:
        """The periodic repair: drop the cache if it is behind ``checked_revision``, rebuild it if it is gone."""
        ...

    async def load(self) -> tuple[int, list[Entry]] | None:
        """A complete snapshot and the revision it reflects, or None when the cache has none to give."""
        ...


class NullValueCache:
    """No shared cache: writes keep nothing, and there is never a snapshot to start from."""

    async def apply(self, change: Change, entry: Entry | None) -> None:
        return None

    async def apply_and_publish(self, change: Change, entry: Entry | None) -> bool:
        return False

    async def refresh(self, store: KVStore, checked_revision: int) -> None:
        return None

    async def load(self) -> tuple[int, list[Entry]] | None:
        return None
