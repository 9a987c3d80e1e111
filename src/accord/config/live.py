"""LiveConfig: typed settings over a replica of config/, read from memory in every process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from accord.config.registry import SettingRegistry
from accord.config.settings import SettingsGroup
from accord.config.spec import SettingSpec, StoredSetting, parse_env
from accord.config.values import (
    HistoryItem,
    Resolved,
    SettingChange,
    SettingMeta,
    env_override_enabled,
    resolve,
    to_meta,
)
from accord.core.crypto import Cipher, CryptoError
from accord.core.environ import process_environ
from accord.core.errors import AccordError, CodecError, InvalidInputError, NotFoundError
from accord.core.keys import PROFILE_PREFIX, SCHEMA_PREFIX, check_depth, check_profile, profile_key
from accord.replica.replica import DEFAULT_CHECK_INTERVAL_S, Replica
from accord.replica.status import ReplicaStatus
from accord.store.types import Change, Entry, KVStore, PutItem, WriteContext

if TYPE_CHECKING:
    from accord.registry.fleet import Announcer

log = logging.getLogger("accord.config")
ChangeCallback = Callable[[SettingChange], Awaitable[None] | None]

__all__ = ["DEFAULT_CHECK_INTERVAL_S", "ChangeCallback", "LiveConfig"]


class LiveConfig:
    """Typed settings shared by every process on one store. Create it with ``await accord.connect(...)``.

    It holds a replica of config/ (and of any extra prefixes it was connected with, such as acl/ for
    a server's token index); raw key writes stay on the replica, out of this typed API.
    """

    def __init__(
        self,
        replica: Replica,
        registry: SettingRegistry,
        *,
        environ: dict[str, str] | None = None,
        use_env: bool = True,
        profile: str | None = None,
    ) -> None:
        self._replica = replica
        self._profile = profile
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self.announcer: Announcer | None = None
        self._store = replica.store
        self._registry = registry
        self._environ = dict(process_environ() if environ is None else environ) if use_env else {}
        self._override = env_override_enabled(self._environ)
        self._resolved: dict[str, Resolved] = {}
        self._views: dict[str, SettingsGroup] = {}
        self._callbacks: list[tuple[str, ChangeCallback]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cipher: Cipher | None = None
        self._env_values = self._parse_env()
        self._make_views()
        replica.on_change(self._entry_changed)
        replica.on_reload(self._reloaded)
        replica.before_recover(self._register)

    # ----- reads: memory only -------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        known = ", ".join(self._registry.categories()) or "none"
        raise AttributeError(f"no settings category {name!r}; known: {known}")

    def get(self, path: str) -> Any:
        """The effective value of a setting."""
        self._registry.spec(path)
        return self._resolved[path].value

    def meta(self, path: str) -> SettingMeta:
        spec = self._registry.spec(path)
        resolved = self._resolved[path]
        key = profile_key(self._profile, spec.key) if resolved.source == "profile" else spec.key
        return to_meta(spec, resolved, self._replica.entry(key))

    def all(self, prefix: str = "") -> list[SettingMeta]:
        """Every known setting whose dotted path starts with ``prefix``, sorted by path."""
        return [self.meta(path) for path in sorted(self._registry.by_path) if path.startswith(prefix)]

    def spec(self, path: str, *, visible: Callable[[str], bool] | None = None) -> SettingSpec:
        return self._registry.spec(path, visible=visible)

    @property
    def profile(self) -> str | None:
        """The environment profile (ACCORD_ENV) whose ``env/<profile>/`` keys win over the base keys."""
        return self._profile

    @property
    def registry(self) -> SettingRegistry:
        return self._registry

    # ----- the replica underneath ---------------------------------------------------------------

    @property
    def replica(self) -> Replica:
        """The live copy of the keys this LiveConfig reads (config/ plus any extra prefixes)."""
        return self._replica

    @property
    def store(self) -> KVStore:
        return self._store

    @property
    def last_revision(self) -> int:
        return self._replica.last_revision

    @property
    def read_only(self) -> bool:
        """True while started from a cached snapshot with the database unreachable: writes are refused."""
        return self._replica.read_only

    def status(self) -> ReplicaStatus:
        return self._replica.status()

    def entry(self, key: str) -> Entry | None:
        """The stored entry of a key this LiveConfig replicates (raw bytes; secrets still sealed)."""
        return self._replica.entry(key)

    def entries(self, prefix: str = "") -> list[Entry]:
        return self._replica.entries(prefix)

    def on_bus_change(self, listener: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``listener(change)`` for each change another process announced, once it is applied here."""
        return self._replica.on_bus_change(listener)

    async def start(self, *, snapshot: tuple[int, list[Entry]], watch: bool = True, read_only: bool = False) -> None:
        await self._replica.start(snapshot=snapshot, watch=watch, read_only=read_only)

    async def resync(self) -> None:
        """Catch up from the store now (normally the bus and the periodic check do this)."""
        await self._replica.resync()

    async def check_once(self) -> None:
        """Run the periodic revision check now."""
        await self._replica.check_once()

    # ----- writes: the store first, then memory, then everyone else -----------------------------

    async def set(
        self,
        path: str,
        value: object,
        *,
        expect_version: int | None = None,
        ctx: WriteContext | None = None,
        profile: str | None = None,
    ) -> SettingMeta:
        """Validate, write a new revision, apply it here, announce it; returns the new state.

        With ``profile`` the value goes to that environment profile's key (``env/<profile>/config/...``).
        """
        with self._paths_named():
            await self._replica.put_keys([self._put_item(path, value, expect_version, profile)], ctx=ctx)
        return self.meta(path)

    async def set_profile(self, profile: str, path: str, value: object, *, ctx: WriteContext | None = None) -> Change:
        """Write ``value`` to ``profile``'s key of ``path`` (validated and sealed like the base setting)."""
        check_profile(profile)
        return (await self._replica.put_keys([self._put_item(path, value, None, profile)], ctx=ctx))[0]

    async def delete_profile(self, profile: str, path: str, *, ctx: WriteContext | None = None) -> Change:
        """Remove ``profile``'s value of ``path``: instances in that profile fall back to the base layers."""
        check_profile(profile)
        return await self._replica.delete_key(profile_key(profile, self._registry.spec(path).key), ctx=ctx)

    def profile_value(self, profile: str, path: str) -> tuple[object, Entry] | None:
        """The value stored in ``profile``'s layer of ``path`` (from this replica when it holds the profile)."""
        spec = self._registry.spec(path)
        entry = self._replica.entry(profile_key(profile, spec.key))
        if entry is None:
            return None
        text = self.stored_text(spec, entry.value, secret=entry.secret, key=entry.key)
        return spec.decode(text), entry

    def adopt_announcer(self, announcer: Announcer) -> None:
        """Keep ``announcer`` (this process's fleet row, docs/fleet.md) until ``aclose()``, which removes it."""
        self.announcer = announcer
        self._closers.append(announcer.aclose)

    async def set_many(self, values: dict[str, object], *, ctx: WriteContext | None = None) -> list[SettingMeta]:
        """Validate every value first, then write them all in one transaction: all or nothing."""
        items = [self._put_item(path, value, None) for path, value in values.items()]
        with self._paths_named():
            await self._replica.put_keys(items, ctx=ctx)
        return [self.meta(path) for path in values]

    async def set_input(self, path: str, raw: str, *, expect_version: int | None = None) -> SettingMeta:
        """Like ``set`` for a value typed by a person (CLI, form): parsed by the setting's type first."""
        return await self.set(path, self._registry.spec(path).parse_input(raw), expect_version=expect_version)

    async def delete(
        self, path: str, *, expect_version: int | None = None, ctx: WriteContext | None = None
    ) -> SettingMeta:
        """Remove the stored value; the setting falls back to its environment variable or default.

        The answer's ``mod_revision`` is the revision the delete committed (``meta()`` says 0 afterwards:
        nothing is stored), so a caller can tell the write it made."""
        key = self._registry.spec(path).key
        with self._paths_named():
            change = await self._replica.delete_key(key, expect_version=expect_version, ctx=ctx)
        return replace(self.meta(path), mod_revision=change.revision)

    async def rollback(
        self,
        path: str,
        to_version: int | None = None,
        *,
        to_revision: int | None = None,
        ctx: WriteContext | None = None,
    ) -> SettingMeta:
        """Restore the value of ``to_version`` (or the value it had at ``to_revision``) as a new revision.

        The old value is validated against today's type. Versions never restart, so either names one value.
        """
        spec = self._registry.spec(path)
        self._replica.check_writable()
        to_version = await self._version_to_restore(spec, to_version, to_revision)
        old = [item for item in await self._store.history(spec.key) if item.version == to_version]
        if old and old[0].value is not None:
            spec.validate(spec.decode(self.stored_text(spec, old[0].value, secret=old[0].secret)))
        with self._paths_named():
            await self._replica.rollback_key(spec.key, to_version, ctx=ctx)
        return self.meta(path)

    async def _version_to_restore(self, spec: SettingSpec, to_version: int | None, to_revision: int | None) -> int:
        if to_version is not None and to_revision is None:
            return to_version
        if to_version is not None or to_revision is None:
            raise InvalidInputError(f"rollback of {spec.path}: give exactly one of to_version and to_revision")
        then = await self._store.value_at(spec.key, to_revision)
        if then is None:
            raise NotFoundError(f"{spec.path} had no stored value at revision {to_revision}")
        return then.version

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

    async def aclose(self) -> None:
        while self._closers:
            await self._closers.pop()()
        for task in list(self._tasks):
            task.cancel()
        await self._replica.aclose()

    async def __aenter__(self) -> LiveConfig:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    # ----- internals ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _paths_named(self) -> Iterator[None]:
        """The store's errors name keys (``'config/llm/model'``); a settings user reads dotted paths."""
        try:
            yield
        except AccordError as exc:
            exc.detail = self._registry.name_paths(exc.detail)
            exc.args = (exc.detail,)
            raise

    def _put_item(self, path: str, value: object, expect_version: int | None, profile: str | None = None) -> PutItem:
        spec = self._registry.spec(path)
        key = profile_key(profile, spec.key)
        check_depth(f"the value for {path}", value)
        try:
            data = spec.encode(spec.validate(value)).encode()
        except CodecError:
            if not spec.secret:
                raise
            raise CodecError(f"cannot encode the value given for secret setting {path} (not shown)") from None
        if spec.secret:
            data = self.cipher().encrypt(data, aad=key.encode())
        return PutItem(key, data, expect_version, spec.secret)

    def cipher(self) -> Cipher:
        """The shared AES-GCM cipher, loaded on first use so stores without secrets never need a key."""
        if self._cipher is None:
            self._cipher = self._store.cipher()
        return self._cipher

    def stored_text(self, spec: SettingSpec, data: bytes, *, secret: bool, key: str | None = None) -> str:
        """The canonical text of a stored value, decrypted when it was stored as a secret.

        ``key`` is the store key it was sealed under when not the setting's own (a profile's key)."""
        if secret:
            if Cipher.key_id_of(data) not in self.cipher().key_ids:
                self._cipher = None  # sealed under a key added since we loaded ours (secrets rotate-key): reload once
            data = self.cipher().decrypt(data, aad=(key or spec.key).encode())
        return data.decode()

    def stored_value(self, path: str) -> object:
        """The stored (not effective) value of a setting, or None when nothing is stored."""
        spec = self._registry.spec(path)
        entry = self._replica.entry(spec.key)
        return None if entry is None else spec.decode(self.stored_text(spec, entry.value, secret=entry.secret))

    async def _register(self) -> None:
        if self._registry.groups:
            changes = await self._store.put_schemas(self._registry.stored_form(), actor=self._replica.actor)
            await self._replica.announce(changes)

    def _learn_schema(self, key: str) -> None:
        """A process that declares nothing (the server, the CLI) learns settings declared after it started."""
        entry = self._replica.entry(key)
        if self._registry.groups or entry is None:
            return
        path = key.removeprefix(SCHEMA_PREFIX)
        try:
            spec = StoredSetting.from_stored(path, entry.value.decode())
        except (ValueError, KeyError, AccordError) as exc:
            log.warning("ignoring unreadable stored schema for %s: %s", path, exc)
            return
        self._registry.add(spec)
        self._resolve(spec)

    def _entry_changed(self, change: Change) -> None:
        if change.key.startswith(SCHEMA_PREFIX):
            self._learn_schema(change.key)
            return
        base_key = self._base_key(change.key)
        if base_key is None:
            return
        spec = self._registry.spec_for_key(base_key)
        if spec is None:
            return
        before = self._resolved.get(spec.path)
        self._resolve(spec)
        entry = self._replica.entry(change.key)
        version = entry.version if entry else change.version
        old = before.value if before else None
        new = self._resolved[spec.path].value
        self._fire(SettingChange(spec.path, old, new, version, change.revision, change.op, spec.secret))

    def _reloaded(self, revision: int, fire: bool) -> None:
        for entry in self._replica.entries(SCHEMA_PREFIX):
            if entry.key.removeprefix(SCHEMA_PREFIX) not in self._registry.by_path:
                self._learn_schema(entry.key)
        for spec in self._registry.by_path.values():
            before = self._resolved.get(spec.path)
            self._resolve(spec)
            after = self._resolved[spec.path].value
            if fire and before is not None and before.value != after:
                self._fire(SettingChange(spec.path, before.value, after, 0, revision, "put", spec.secret))

    def _base_key(self, key: str) -> str | None:
        if not key.startswith(PROFILE_PREFIX):
            return key
        mine = profile_key(self._profile, "") if self._profile is not None else None
        return key.removeprefix(mine) if mine is not None and key.startswith(mine) else None

    def _profile_layer(self, spec: SettingSpec) -> tuple[object] | None:
        if self._profile is None:
            return None
        try:
            found = self.profile_value(self._profile, spec.path)
            return None if found is None else (spec.validate(found[0]),)
        except (AccordError, UnicodeDecodeError) as exc:
            log.error("profile %s value of %s is invalid, ignoring it: %s", self._profile, spec.path, _detail(exc))
            return None

    def _resolve(self, spec: SettingSpec) -> None:
        entry = self._replica.entry(spec.key)
        stored: object | None = None
        if entry is not None:
            try:
                stored = spec.validate(spec.decode(self.stored_text(spec, entry.value, secret=entry.secret)))
            except (AccordError, UnicodeDecodeError) as exc:
                log.error("stored value of %s is invalid, using the default instead: %s", spec.path, _detail(exc))
                entry = None
        resolved = resolve(
            spec,
            stored,
            entry is not None,
            self._env_values.get(spec.path),
            override=self._override,
            profile=self._profile_layer(spec),
        )
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

    def _history_item(self, spec: SettingSpec, change: Change) -> HistoryItem:
        value: object = None
        if change.value is not None:
            try:
                value = spec.decode(self.stored_text(spec, change.value, secret=change.secret))
            except CryptoError as exc:
                value = f"<cannot decrypt: {exc.detail}>"
            except (CodecError, UnicodeDecodeError):
                value = change.value.decode(errors="replace")
        return HistoryItem(change.revision, change.version, change.op, value, change.actor, change.at, spec.secret)

    def _parse_env(self) -> dict[str, object]:
        values: dict[str, object] = {}
        for spec in self._registry.by_path.values():
            if spec.env and spec.env in self._environ:
                values[spec.path] = parse_env(spec, spec.env, self._environ[spec.env])
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
