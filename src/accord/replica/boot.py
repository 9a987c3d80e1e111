"""A replica's first snapshot: from the database (retrying), else read-only from a cache or the snapshot file.

A database that stays unreachable is not fatal when the value cache is complete or an opt-in
last-known-good snapshot file exists: the replica starts read-only and degraded, and catches up
once the database is back. Otherwise start-up fails with an error naming what it could not reach.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from accord.bus.factory import Propagation
from accord.core.errors import StoreUnavailableError
from accord.core.retry import retry_for
from accord.replica import snapshot_file
from accord.store.types import Entry, KVStore

log = logging.getLogger("accord.replica")
Snapshot = tuple[int, list[Entry]]


@dataclass(frozen=True, slots=True)
class InitialSnapshot:
    snapshot: Snapshot
    read_only: bool


async def initial_snapshot(
    store: KVStore,
    propagation: Propagation,
    prefixes: Sequence[str],
    *,
    budget_s: float,
    snapshot_path: str | None = None,
    prepare: Callable[[], Awaitable[None]] | None = None,
) -> InitialSnapshot:
    """Migrate, run ``prepare`` (e.g. register schemas), read; read-only from a fallback if the database stays down."""
    wanted = tuple(prefixes)

    async def ready() -> Snapshot:
        await store.migrate()
        if prepare is not None:
            await prepare()
        return await store.snapshot(wanted)

    try:
        snapshot = await retry_for(
            ready, what=f"database {store.url}", budget_s=budget_s, retry_on=(StoreUnavailableError,)
        )
        return InitialSnapshot(snapshot, read_only=False)
    except StoreUnavailableError as exc:
        fallback = await _fallback(propagation, snapshot_path, wanted)
        if fallback is None:
            raise StoreUnavailableError(
                f"could not reach database {store.url} within {budget_s:g}s, and there is no complete Redis cache "
                f"or last-known-good snapshot to start from: {exc.detail}"
            ) from exc
        log.warning("database %s unreachable: starting read-only from %s", store.url, fallback[1])
        return InitialSnapshot(fallback[0], read_only=True)


async def _fallback(
    propagation: Propagation, snapshot_path: str | None, prefixes: tuple[str, ...]
) -> tuple[Snapshot, str] | None:
    cached = await propagation.cache.load()
    if cached is not None:
        revision, entries = cached
        return (revision, [e for e in entries if e.key.startswith(prefixes)]), "the redis cache"
    if snapshot_path:
        loaded = snapshot_file.read(snapshot_path)
        if loaded is not None:
            return loaded, f"the snapshot file {snapshot_path}"
    return None
