"""LiveConfig: every process's in-memory view of the settings, kept current by the bus.

Reads are memory reads. Changes are applied strictly in revision order; a gap, a reconnect or
the periodic revision check makes the process replay history from its last revision, so a
dropped bus message costs at most one check interval of staleness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from accord.bus.factory import Propagation
from accord.config import lkg
from accord.config.registry import SettingRegistry
from accord.config.settings import SettingsGroup
from accord.config.spec import SettingSpec
from accord.config.values import (
    HistoryItem,
    Resolved,
    SettingChange,
    SettingMeta,
    env_override_enabled,
    resolve,
    to_meta,
)
from accord.core.errors import AccordError, CodecError, CompactedError, ReadOnlyError, StoreUnavailableError
from accord.core.keys import CONFIG_PREFIX
from accord.store.kv import SqlKVStore
from accord.store.migrate import upgrade
from accord.store.types import Change, Entry, PutItem

log = logging.getLogger("accord.config")
ChangeCallback = Callable[[SettingChange], Awaitable[None] | None]
DEFAULT_CHECK_INTERVAL_S = 5.0
_EPOCH = datetime.fromtimestamp(0, UTC)


class LiveConfig:
    """Typed settings shared by every process on one store. Create it with ``await accord.connect(...)``."""

    def __init__(
        self,
        store: SqlKVStore,
        propagation: Propagation,
        registry: SettingRegistry,
        *,
        actor: str,
        check_interval: float = DEFAULT_CHECK_INTERVAL_S,
        environ: dict[str, str] | None = None,
        use_env: bool = True,
        snapshot_file: str | None = None,
    ) -> None:
        self._store = store
        self._propagation = propagation
        self._registry = registry
        self._actor = actor
        self._check_interval = check_interval
        self._environ = dict(os.environ if environ is None else environ) if use_env else {}
        self._override = env_override_enabled(self._environ)
        self._entries: dict[str, Entry] = {}
        self._resolved: dict[str, Resolved] = {}
        self._views: dict[str, SettingsGroup] = {}
        self._callbacks: list[tuple[str, ChangeCallback]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._lock = asyncio.Lock()
        self._checker: asyncio.Task[None] | None = None
        self.last_revision = 0
        self.read_only = False
        self.db_degraded = False
        self._snapshot_file = snapshot_file
        self._snapshot_written = -1
        self._env_values = self._parse_env()
        self._make_views()

    # ----- reads: memory only -------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"no settings category {name!r}; known: {', '.join(self._registry.categories()) or 'none'}"
        )

    def get(self, path: str) -> Any:
        """The effective value of a setting."""
        self._registry.spec(path)
        return self._resolved[path].value

    def meta(self, path: str) -> SettingMeta:
        spec = self._registry.spec(path)
        return to_meta(spec, self._resolved[path], self._entries.get(spec.key))

    def all(self, prefix: str = "") -> list[SettingMeta]:
        """Every known setting whose dotted path starts with ``prefix``, sorted by path."""
        return [self.meta(path) for path in sorted(self._registry.by_path) if path.startswith(prefix)]

    def spec(self, path: str) -> SettingSpec:
        return self._registry.spec(path)

    @property
    def registry(self) -> SettingRegistry:
        return self._registry

    @property
    def store(self) -> SqlKVStore:
        return self._store

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

    # ----- writes: the store first, then memory, then everyone else -----------------------------

    async def set(self, path: str, value: object, *, expect_version: int | None = None) -> SettingMeta:
        """Validate, write a new revision, apply it here, announce it; returns the new state."""
        spec = self._registry.spec(path)
        text = spec.encode(spec.validate(value))
        self._check_writable()
        change = await self._store.put(
            spec.key, text.encode(), expect_version=expect_version, actor=self._actor, secret=spec.secret
        )
        await self._after_write(change)
        return self.meta(path)

    async def set_many(self, values: dict[str, object]) -> list[SettingMeta]:
        """Validate every value first, then write them all in one transaction: all or nothing."""
        items = []
        for path, value in values.items():
            spec = self._registry.spec(path)
            items.append(PutItem(spec.key, spec.encode(spec.validate(value)).encode(), secret=spec.secret))
        self._check_writable()
        changes = await self._store.put_many(items, actor=self._actor)
        for change in changes:
            await self._after_write(change)
        return [self.meta(path) for path in values]

    async def set_input(self, path: str, raw: str, *, expect_version: int | None = None) -> SettingMeta:
        """Like ``set`` for a value typed by a person (CLI, form): parsed by the setting's type first."""
        return await self.set(path, self._registry.spec(path).parse_input(raw), expect_version=expect_version)

    async def delete(self, path: str, *, expect_version: int | None = None) -> SettingMeta:
        """Remove the stored value; the setting falls back to its environment variable or default."""
        spec = self._registry.spec(path)
        self._check_writable()
        change = await self._store.delete(spec.key, expect_version=expect_version, actor=self._actor)
        await self._after_write(change)
        return self.meta(path)

    async def rollback(self, path: str, to_version: int) -> SettingMeta:
        """Restore the value of ``to_version`` as a new revision."""
        spec = self._registry.spec(path)
        self._check_writable()
        old = [item for item in await self._store.history(spec.key) if item.version == to_version]
        if old and old[0].value is not None:
            spec.validate(spec.decode(old[0].value.decode()))
        change = await self._store.rollback(spec.key, to_version, actor=self._actor)
        await self._after_write(change)
        return self.meta(path)

    async def history(self, path: str, *, limit: int | None = None) -> list[HistoryItem]:
        """Stored versions of a setting, newest first."""
        spec = self._registry.spec(path)
        return [self._history_item(spec, change) for change in await self._store.history(spec.key, limit=limit)]

    def on_change(self, prefix: str, callback: ChangeCallback) -> Callable[[], None]:
        """Call ``callback`` (plain or async) for every change of a setting under the dotted ``prefix``.

        Returns a function that unsubscribes it.
        """
        item = (prefix, callback)
        self._callbacks.append(item)
        return lambda: self._callbacks.remove(item) if item in self._callbacks else None

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
        for task in list(self._tasks):
            task.cancel()
        await self._store.aclose()

    async def __aenter__(self) -> LiveConfig:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def resync(self) -> None:
        """Catch up from the store now (normally the bus and the periodic check do this)."""
        async with self._lock:
            await self._resync_locked()

    # ----- internals ----------------------------------------------------------------------------

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
            entry = self._entries.get(change.key)
            await cache.apply(change, entry if change.op == "put" else None)
        try:
            await self._propagation.bus.publish(change)
        except Exception as exc:
            log.warning("could not announce revision %d: %s", change.revision, exc)

    async def _on_event(self, event: Change | object) -> None:
        try:
            async with self._lock:
                if isinstance(event, Change):
                    await self._apply_change(event)
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
        if change.value_omitted:
            entry = await self._store.get(change.key)
            if entry is None or entry.mod_revision != change.revision:
                await self._resync_locked()
                return
        self._apply_one(change)

    async def _resync_locked(self) -> None:
        if self.read_only:
            return
        try:
            changes = await self._store.changes_since(self.last_revision)
        except CompactedError:
            self._load(*await self._store.snapshot(CONFIG_PREFIX), fire=True)
            return
        for change in changes:
            self._apply_one(change)
        self._set_db_degraded(False, "")

    def _apply_one(self, change: Change) -> None:
        self.last_revision = max(self.last_revision, change.revision)
        if not change.key.startswith(CONFIG_PREFIX):
            return
        if change.op == "delete":
            self._entries.pop(change.key, None)
        else:
            old = self._entries.get(change.key)
            self._entries[change.key] = Entry(
                key=change.key,
                value=change.value or b"",
                version=change.version,
                create_revision=old.create_revision if old else change.revision,
                mod_revision=change.revision,
                secret=change.secret,
                updated_at=change.at or (old.updated_at if old else _EPOCH),
                updated_by=change.actor,
            )
        spec = self._registry.spec_for_key(change.key)
        if spec is not None:
            self._refresh(spec, change)

    def _load(self, revision: int, entries: list[Entry], *, fire: bool = False) -> None:
        self._entries = {e.key: e for e in entries if e.key.startswith(CONFIG_PREFIX)}
        self.last_revision = revision
        for spec in self._registry.by_path.values():
            before = self._resolved.get(spec.path)
            self._resolve(spec)
            if fire and before is not None and before.value != self._resolved[spec.path].value:
                self._fire(
                    SettingChange(
                        spec.path, before.value, self._resolved[spec.path].value, 0, revision, "put", spec.secret
                    )
                )

    def _refresh(self, spec: SettingSpec, change: Change) -> None:
        before = self._resolved.get(spec.path)
        self._resolve(spec)
        after = self._resolved[spec.path]
        entry = self._entries.get(spec.key)
        version = entry.version if entry else change.version
        old = before.value if before else None
        self._fire(SettingChange(spec.path, old, after.value, version, change.revision, change.op, spec.secret))

    def _resolve(self, spec: SettingSpec) -> None:
        entry = self._entries.get(spec.key)
        stored: object | None = None
        if entry is not None:
            try:
                stored = spec.validate(spec.decode(entry.value.decode()))
            except (AccordError, UnicodeDecodeError) as exc:
                log.error("stored value of %s is invalid, using the default instead: %s", spec.path, _detail(exc))
                entry = None
        resolved = resolve(spec, stored, entry is not None, self._env_values.get(spec.path), override=self._override)
        self._resolved[spec.path] = resolved
        category, name = spec.path.split(".", 1)
        view = self._views.get(category)
        if view is not None:
            view.__dict__[name] = resolved.value

    def _fire(self, change: SettingChange) -> None:
        for prefix, callback in list(self._callbacks):
            if not change.path.startswith(prefix):
                continue
            try:
                result = callback(change)
            except Exception:
                log.exception("on_change callback for %s failed", change.path)
                continue
            if asyncio.iscoroutine(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._callback_done)

    def _callback_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("on_change callback failed", exc_info=task.exception())

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self._check_interval)
            await self.check_once()

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
                    await self._propagation.cache.ensure(self._store)
        except StoreUnavailableError as exc:
            self._set_db_degraded(True, exc.detail)

    async def _recover(self) -> None:
        """Leave read-only mode once the database answers: migrate, register, reload everything."""
        await upgrade(self._store.engine)
        if self._registry.groups:
            await self._store.put_schemas(self._registry.stored_form())
        snapshot = await self._store.snapshot(CONFIG_PREFIX)
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
            log.warning("database unavailable, serving settings from memory: %s", detail)
        elif not degraded and self.db_degraded:
            log.info("database reachable again at revision %d", self.last_revision)
        self.db_degraded = degraded

    def _history_item(self, spec: SettingSpec, change: Change) -> HistoryItem:
        value: object = None
        if change.value is not None:
            try:
                value = spec.decode(change.value.decode())
            except (CodecError, UnicodeDecodeError):
                value = change.value.decode(errors="replace")
        return HistoryItem(change.revision, change.version, change.op, value, change.actor, change.at, spec.secret)

    def _parse_env(self) -> dict[str, object]:
        values: dict[str, object] = {}
        for spec in self._registry.by_path.values():
            if spec.env and spec.env in self._environ:
                values[spec.path] = spec.parse_input(self._environ[spec.env])
        return values

    def _make_views(self) -> None:
        reserved = set(dir(type(self)))
        for category, group in self._registry.groups.items():
            if category in reserved:
                raise AccordError(f"category {category!r} clashes with a LiveConfig attribute; rename the category")
            view = group.__new__(group)
            self._views[category] = view
            self.__dict__[category] = view
        for spec in self._registry.by_path.values():
            self._resolve(spec)


def _detail(exc: BaseException) -> str:
    return exc.detail if isinstance(exc, AccordError) else str(exc)
