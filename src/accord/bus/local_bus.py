"""The bus for a single machine: in-process fan-out plus polling of the revision row.

Processes sharing one SQLite file have no channel between them, so each watches the file and asks
its receiver to resync when the revision moved. The watch is ``PRAGMA data_version`` on a private
connection, every ``poll_interval`` (5 ms by default): a read of the shared-memory WAL index that
changes whenever another connection commits, so the revision row is read only when something was
committed (and once a second regardless). The same process makes the file's WAL checkpoints, once a
second and PASSIVE (never waiting for writers), so commits do not (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import defaultdict
from pathlib import Path

from accord.bus.types import Applied, EventHandler, Resync, nothing_applied
from accord.core.errors import AccordError, StoreUnavailableError
from accord.store import tables as t
from accord.store.engine import sqlite_file
from accord.store.types import Change, KVStore

log = logging.getLogger("accord.bus.local")
DEFAULT_POLL_INTERVAL_S = 0.005
UNWATCHED_POLL_INTERVAL_S = 0.05  # a database without a file to watch: the revision row itself is read
FULL_CHECK_INTERVAL_S = 1.0
CHECKPOINT_INTERVAL_S = 1.0
_REVISION_QUERY = f"SELECT value FROM {t.meta.name} WHERE name = ?"

_handlers_by_store: defaultdict[str, set[EventHandler]] = defaultdict(set)


class LocalChangeBus:
    """Fan-out to receivers of the same store in this process; polling notices other processes."""

    def __init__(self, store: KVStore, *, store_id: str, poll_interval: float = DEFAULT_POLL_INTERVAL_S) -> None:
        self._store = store
        self._store_id = store_id
        self._interval = poll_interval
        self._handler: EventHandler | None = None
        self._poller: asyncio.Task[None] | None = None
        self._seen_revision = -1
        self._degraded = False
        self._file = _watched_file(store)
        self._checkpointer: asyncio.Task[None] | None = None
        self._writing = False

    @property
    def mode(self) -> str:
        return "local"

    @property
    def degraded(self) -> bool:
        return self._degraded

    @property
    def fallback_active(self) -> bool:
        return False

    async def wait_connected(self, wait_s: float) -> bool:
        return True  # fan-out within the process needs no connection, and polling starts with start()

    async def start(self, handler: EventHandler, *, applied: Applied = nothing_applied) -> None:
        self._handler = handler
        _handlers_by_store[self._store_id].add(handler)
        self._poller = asyncio.create_task(self._poll_forever(handler), name="accord-local-bus")
        if self._file is not None:
            self._checkpointer = asyncio.create_task(self._checkpoint_forever(self._file), name="accord-checkpoint")

    async def publish(self, change: Change) -> None:
        # This process's own write: the poller need not ask its receiver to resync for it (a receiver
        # that missed a revision before it finds the gap itself).
        self._seen_revision = max(self._seen_revision, change.revision)
        self._writing = True
        for handler in list(_handlers_by_store[self._store_id]):
            if handler is not self._handler:
                await handler(change)

    async def aclose(self) -> None:
        if self._handler:
            _handlers_by_store[self._store_id].discard(self._handler)
        for task in (self._poller, self._checkpointer):
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _poll_forever(self, handler: EventHandler) -> None:
        watch = _DataVersion(self._file) if self._file is not None else None
        interval = self._interval if watch is not None else max(self._interval, UNWATCHED_POLL_INTERVAL_S)
        try:
            await self._poll(handler, watch, interval)
        finally:
            if watch is not None:
                watch.close()

    async def _poll(self, handler: EventHandler, watch: _DataVersion | None, interval: float) -> None:
        seen_version: int | None = None
        next_full = 0.0
        pause = interval
        while True:
            await asyncio.sleep(pause)
            if watch is not None and not self._degraded and time.monotonic() < next_full:
                version = watch.read()
                if version is not None and version == seen_version:
                    pause = interval  # quiet again: notice the next change quickly
                    continue
                seen_version = version
            next_full = time.monotonic() + FULL_CHECK_INTERVAL_S
            revision = watch.revision() if watch is not None and not self._degraded else None
            if revision is None:
                try:
                    revision = await self._store.current_revision()
                except StoreUnavailableError as exc:
                    if not self._degraded:
                        log.warning("revision polling failed: %s", exc.detail)
                    self._degraded = True
                    continue
            self._degraded = False
            if revision != self._seen_revision:
                self._seen_revision = revision
                await handler(Resync("revision moved"))
            # A process that is writing itself catches up on every write (its receiver resyncs on the gap), so
            # while it writes, polling backs off to batch the others' changes; an idle watcher polls quickly.
            writing, self._writing = self._writing, False
            pause = min(pause * 2, max(interval, UNWATCHED_POLL_INTERVAL_S)) if writing else interval

    async def _checkpoint_forever(self, path: Path) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)
            try:
                await asyncio.to_thread(_checkpoint, path)
            except sqlite3.Error as exc:
                log.debug("WAL checkpoint of %s skipped: %s", path, exc)


def _watched_file(store: KVStore) -> Path | None:
    try:
        return sqlite_file(store.url)
    except AccordError:
        return None


class _DataVersion:
    """``PRAGMA data_version`` of one SQLite file, on a private connection that never writes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def read(self) -> int | None:
        """The file's data version (it moves when another connection commits); None when it cannot be read."""
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(self._path, timeout=0.05, isolation_level=None)
                self._conn.execute("PRAGMA query_only=1")
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            self.close()
            return None

    def revision(self) -> int | None:
        """The revision row, read on the same private connection (microseconds); None when it cannot be read."""
        try:
            if self._conn is None:
                return None
            row = self._conn.execute(_REVISION_QUERY, (t.REVISION_ROW,)).fetchone()
            return int(row[0]) if row else 0
        except sqlite3.Error:
            return None

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None


def _checkpoint(path: Path) -> None:
    """Copy committed WAL frames into the database file, without waiting for (or blocking) any writer."""
    if not path.exists():
        return
    with contextlib.closing(sqlite3.connect(path, timeout=0.05, isolation_level=None)) as conn:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
