"""A process's in-memory mirror of part of the store, kept current by the bus.

Changes are applied strictly in revision order. A gap, a reconnect, or the periodic revision
check makes the mirror replay history from its last revision, so a dropped bus message costs at
most one check interval of staleness. Writes go to the store first, then into the mirror, then
out to every other process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from accord.bus.factory import Propagation
from accord.config import lkg
from accord.core.errors import CompactedError, ReadOnlyError, StoreUnavailableError
from accord.store.kv import SqlKVStore
from accord.store.migrate import upgrade
from accord.store.types import Change, Entry, PutItem, WriteContext

log = logging.getLogger("accord.config")
DEFAULT_CHECK_INTERVAL_S = 5.0
EntryListener = Callable[[str, Entry | None], None]
BusListener = Callable[[Change], None]
_EPOCH = datetime.fromtimestamp(0, UTC)


class StoreMirror:
    """Entries under ``prefixes`` with their revision; the base of LiveConfig and of the server's indexes."""

    def __init__(
        self,
        store: SqlKVStore,
        propagation: Propagation,
        *,
        actor: str,
        prefixes: Sequence[str],
        check_interval: float = DEFAULT_CHECK_INTERVAL_S,
        snapshot_file: str | None = None,
    ) -> None:
        self._store = store
        self._propagation = propagation
        self._actor = actor
        self._prefixes = tuple(prefixes)
        self._check_interval = check_interval
        self._snapshot_file = snapshot_file
        self._snapshot_written = -1
        self._checked_revision = 0
        self._entries: dict[str, Entry] = {}
        self._entry_listeners: list[EntryListener] = []
        self._bus_listeners: list[BusListener] = []
        self._lock = asyncio.Lock()
        self._checker: asyncio.Task[None] | None = None
        self.last_revision = 0
        self.read_only = False
        self.db_degraded = False

    @property
    def store(self) -> SqlKVStore:
        return self._store

    @property
    def prefixes(self) -> tuple[str, ...]:
        return self._prefixes

    def entry(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def entries(self, prefix: str = "") -> list[Entry]:
        return [entry for key, entry in sorted(self._entries.items()) if key.startswith(prefix)]

    def on_entry(self, listener: EntryListener) -> None:
        """Call ``listener(key, entry or None)`` for every applied change of a mirrored key (in order)."""
        self._entry_listeners.append(listener)

    def on_bus_change(self, listener: BusListener) -> None:
        """Call ``listener(change)`` for each change another process announced, once it is applied here."""
        self._bus_listeners.append(listener)

    def status(self) -> dict[str, Any]:
        """Which dependencies are degraded and how changes travel right now."""
        bus = self._propagation.bus
        return {
            "revision": self.last_revision,
            "database": "degraded" if self.db_degraded else "ok",
            "read_only": self.read_only,
            "bus": bus.mode,
            "bus_degraded": bus.degraded,
            "fallback_active": bool(getattr(bus, "fallback_active", False)),
        }

    # ----- writes -------------------------------------------------------------------------------

    async def put_keys(self, items: Sequence[PutItem], *, ctx: WriteContext | None = None) -> list[Change]:
        """Write raw entries in one transaction, apply them here, announce them."""
        self._check_writable()
        changes = await self._store.put_many(items, ctx=self._context(ctx, "set"))
        for change in changes:
            await self._after_write(change)
        return changes

    async def delete_key(
        self, key: str, *, expect_version: int | None = None, ctx: WriteContext | None = None
    ) -> Change:
        self._check_writable()
        change = await self._store.delete(key, expect_version=expect_version, ctx=self._context(ctx, "delete"))
        await self._after_write(change)
        return change

    async def rollback_key(self, key: str, to_version: int, *, ctx: WriteContext | None = None) -> Change:
        self._check_writable()
        change = await self._store.rollback(key, to_version, ctx=self._context(ctx, "rollback"))
        await self._after_write(change)
        return change

    def _context(self, ctx: WriteContext | None, action: str) -> WriteContext:
        if ctx is None:
            return WriteContext(self._actor, action)
        return WriteContext(ctx.actor or self._actor, ctx.action or action, ctx.request_id)

    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyError("the database is unreachable; this process serves a cached snapshot and refuses writes")

    async def _after_write(self, change: Change) -> None:
        async with self._lock:
            await self._apply_change(change)
        await self._announce(change)

    async def _announce(self, change: Change) -> None:
        cache = self._propagation.cache
        if cache is not None:
            entry = self._entries.get(change.key) or entry_from(change, None) if change.op == "put" else None
            await cache.apply(change, entry)
        try:
            await self._propagation.bus.publish(change)
        except Exception as exc:  # the write is committed; others catch up by the revision check
            log.warning("could not announce revision %d: %s", change.revision, exc)

    # ----- lifecycle ----------------------------------------------------------------------------

    async def start(self, *, snapshot: tuple[int, list[Entry]], watch: bool = True, read_only: bool = False) -> None:
        """Load the snapshot, then listen; the bus's first event is a resync, so nothing in between is lost."""
        self.read_only = read_only
        self.db_degraded = read_only
        self._load(*snapshot)
        if not read_only:
            self._write_snapshot_file()
        if watch:
            await self._propagation.bus.start(self._on_event)
            self._checker = asyncio.create_task(self._check_forever(), name="accord-revision-check")

    async def aclose(self) -> None:
        if self._checker:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
        await self._propagation.bus.aclose()
        await self._store.aclose()

    async def resync(self) -> None:
        """Catch up from the store now (normally the bus and the periodic check do this)."""
        async with self._lock:
            await self._resync_locked()

    async def check_once(self) -> None:
        """The periodic safety net: catch up if the revision moved, rebuild the Redis cache if it vanished."""
        try:
            if self.read_only:
                await self._recover()
                return
            revision = await self._store.current_revision()
            if revision != self.last_revision:
                await self.resync()
            self._set_db_degraded(False, "")
            self._write_snapshot_file()
            if self._propagation.cache is not None:
                with contextlib.suppress(Exception):
                    await self._propagation.cache.invalidate_if_behind(self._checked_revision)
                    await self._propagation.cache.ensure(self._store)
            self._checked_revision = self.last_revision
        except StoreUnavailableError as exc:
            self._set_db_degraded(True, exc.detail)

    # ----- applying changes ---------------------------------------------------------------------

    def _mirrors(self, key: str) -> bool:
        return key.startswith(self._prefixes)

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self._check_interval)
            await self.check_once()

    async def _on_event(self, event: Change | object) -> None:
        try:
            async with self._lock:
                if isinstance(event, Change):
                    before = self.last_revision
                    await self._apply_change(event)
                    if before < event.revision <= self.last_revision:
                        for listener in self._bus_listeners:
                            listener(event)
                else:
                    await self._resync_locked()
        except StoreUnavailableError as exc:
            self._set_db_degraded(True, exc.detail)

    async def _apply_change(self, change: Change) -> None:
        if change.revision <= self.last_revision:
            return
        if change.revision != self.last_revision + 1:
            await self._resync_locked()
            return
        if change.value_omitted and self._mirrors(change.key):
            entry = await self._store.get(change.key)
            if entry is None or entry.mod_revision != change.revision:
                await self._resync_locked()
                return
            change = Change(
                change.revision,
                change.key,
                "put",
                change.version,
                entry.value,
                entry.secret,
                entry.updated_by,
                entry.updated_at,
            )
        self._apply_one(change)

    async def _resync_locked(self) -> None:
        if self.read_only:
            return
        try:
            changes = await self._store.changes_since(self.last_revision)
        except CompactedError:
            self._load(*await self._store.snapshot(self._prefixes), fire=True)
            return
        for change in changes:
            self._apply_one(change)
        self._set_db_degraded(False, "")

    def _apply_one(self, change: Change) -> None:
        self.last_revision = max(self.last_revision, change.revision)
        if not self._mirrors(change.key):
            return
        entry: Entry | None = None
        if change.op == "delete":
            self._entries.pop(change.key, None)
        else:
            entry = entry_from(change, self._entries.get(change.key))
            self._entries[change.key] = entry
        for listener in self._entry_listeners:
            listener(change.key, entry)
        self._entry_changed(change)

    def _load(self, revision: int, entries: list[Entry], *, fire: bool = False) -> None:
        self._entries = {e.key: e for e in entries if self._mirrors(e.key)}
        self.last_revision = revision
        for listener in self._entry_listeners:
            for key, entry in self._entries.items():
                listener(key, entry)
        self._reloaded(revision, fire=fire)

    # ----- hooks for subclasses -----------------------------------------------------------------

    def _entry_changed(self, change: Change) -> None:
        """Called after each applied change of a mirrored key."""

    def _reloaded(self, revision: int, *, fire: bool) -> None:
        """Called after a full (re)load of the mirror."""

    async def _register(self) -> None:
        """Called when leaving read-only mode, before reloading (LiveConfig registers its schemas)."""

    # ----- degraded modes -----------------------------------------------------------------------

    async def _recover(self) -> None:
        """Leave read-only mode once the database answers: migrate, register, reload everything."""
        await upgrade(self._store.engine)
        await self._register()
        snapshot = await self._store.snapshot(self._prefixes)
        async with self._lock:
            self._load(*snapshot, fire=True)
            self.read_only = False
        self._set_db_degraded(False, "")

    def _write_snapshot_file(self) -> None:
        if not self._snapshot_file or self._snapshot_written == self.last_revision:
            return
        try:
            lkg.write(self._snapshot_file, self.last_revision, list(self._entries.values()))
            self._snapshot_written = self.last_revision
        except OSError as exc:
            log.warning("could not write the snapshot file %s: %s", self._snapshot_file, exc)

    def _set_db_degraded(self, degraded: bool, detail: str) -> None:
        if degraded and not self.db_degraded:
            log.warning("database unavailable, serving from memory: %s", detail)
        elif not degraded and self.db_degraded:
            log.info("database reachable again at revision %d", self.last_revision)
        self.db_degraded = degraded


def entry_from(change: Change, old: Entry | None) -> Entry:
    """The entry a put leaves behind, given the entry it replaced (if known)."""
    created = old.create_revision if old else (change.revision if change.version == 1 else 0)
    return Entry(
        key=change.key,
        value=change.value or b"",
        version=change.version,
        create_revision=created,
        mod_revision=change.revision,
        secret=change.secret,
        updated_at=change.at or (old.updated_at if old else _EPOCH),
        updated_by=change.actor,
    )
