"""LiveConfig for scripts and synchronous code.

The LiveConfig lives on its own event loop in a daemon thread, so this works the same from a
plain script, a thread pool, or even code that already runs inside some other event loop.
Reads go straight to memory; writes block until the store committed them.

Every method is written out (as httpx writes out ``Client`` beside ``AsyncClient``): a facade that
forwarded unknown names to the LiveConfig would hand back un-awaited coroutines, and a write such as
``set_many`` would silently do nothing. ``SYNC_COUNTERPARTS`` names the blocking method for each async
one, and ``ABSENT`` the async methods deliberately left out; a test keeps both complete.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from accord.config.connect import connect
from accord.config.live import ChangeCallback, LiveConfig
from accord.config.registry import SettingRegistry
from accord.config.settings import SettingsGroup
from accord.config.spec import SettingSpec
from accord.config.values import HistoryItem, SettingMeta
from accord.core.errors import AccordError
from accord.replica.status import ReplicaStatus
from accord.store.types import Change, WriteContext

T = TypeVar("T")

SYNC_COUNTERPARTS = {
    "set": "set",
    "set_profile": "set_profile",
    "delete_profile": "delete_profile",
    "set_many": "set_many",
    "set_input": "set_input",
    "delete": "delete",
    "rollback": "rollback",
    "history": "history",
    "resync": "resync",
    "check_once": "check_once",
    "aclose": "close",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
}
ABSENT = {"start": "connect_sync starts the LiveConfig before returning it"}


class SyncConfig:
    """A blocking facade over a LiveConfig running in a background thread. Create with ``connect_sync``.

    Close it when done: ``cfg.close()``, or ``with accord.connect_sync(...) as cfg:``. Until then a
    daemon thread holds the store's connections and the bus subscription.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread, live: LiveConfig) -> None:
        self._loop = loop
        self._thread = thread
        self._live = live
        self.timeout = 30.0
        reserved = set(dir(type(self)))
        for category in live.registry.groups:
            if category in reserved or category == "timeout":
                raise AccordError(f"category {category!r} clashes with a SyncConfig attribute; rename the category")
            # The same view objects the LiveConfig updates in place, so `cfg.embedding.model` is a memory read.
            self.__dict__[category] = getattr(live, category)

    # ----- reads: memory only -------------------------------------------------------------------

    def group(self, category: str) -> SettingsGroup:
        """The live view of one settings category (the same object as ``cfg.<category>``)."""
        if category not in self._live.registry.groups:
            known = ", ".join(self._live.registry.categories()) or "none"
            raise AttributeError(f"no settings category {category!r}; known: {known}")
        view: SettingsGroup = self.__dict__[category]
        return view

    def get(self, path: str) -> Any:
        """The effective value of a setting."""
        return self._live.get(path)

    def meta(self, path: str) -> SettingMeta:
        return self._live.meta(path)

    def all(self, prefix: str = "") -> list[SettingMeta]:
        """Every known setting whose dotted path starts with ``prefix``, sorted by path."""
        return self._live.all(prefix)

    def spec(self, path: str) -> SettingSpec:
        return self._live.spec(path)

    def stored_value(self, path: str) -> object:
        """The stored (not effective) value of a setting, or None when nothing is stored."""
        return self._live.stored_value(path)

    @property
    def registry(self) -> SettingRegistry:
        return self._live.registry

    @property
    def last_revision(self) -> int:
        return self._live.last_revision

    @property
    def read_only(self) -> bool:
        """True while started from a cached snapshot with the database unreachable: writes are refused."""
        return self._live.read_only

    def status(self) -> ReplicaStatus:
        return self._live.status()

    def on_change(self, prefix: str, callback: ChangeCallback) -> Callable[[], None]:
        """Callbacks run on the background thread; keep them short or hand work to your own queue."""
        return self._live.on_change(prefix, callback)

    # ----- writes: block until the store committed them -----------------------------------------

    def set(
        self,
        path: str,
        value: object,
        *,
        expect_version: int | None = None,
        ctx: WriteContext | None = None,
        profile: str | None = None,
    ) -> SettingMeta:
        return self._run(self._live.set(path, value, expect_version=expect_version, ctx=ctx, profile=profile))

    def set_profile(self, profile: str, path: str, value: object, *, ctx: WriteContext | None = None) -> Change:
        """Write ``value`` to environment profile ``profile``'s key of ``path``."""
        return self._run(self._live.set_profile(profile, path, value, ctx=ctx))

    def delete_profile(self, profile: str, path: str, *, ctx: WriteContext | None = None) -> Change:
        """Remove environment profile ``profile``'s value of ``path`` (that profile falls back to the base)."""
        return self._run(self._live.delete_profile(profile, path, ctx=ctx))

    def set_many(self, values: dict[str, object], *, ctx: WriteContext | None = None) -> list[SettingMeta]:
        """Every value validated first, then all written in one transaction."""
        return self._run(self._live.set_many(values, ctx=ctx))

    def set_input(self, path: str, raw: str, *, expect_version: int | None = None) -> SettingMeta:
        return self._run(self._live.set_input(path, raw, expect_version=expect_version))

    def delete(self, path: str, *, expect_version: int | None = None, ctx: WriteContext | None = None) -> SettingMeta:
        return self._run(self._live.delete(path, expect_version=expect_version, ctx=ctx))

    def rollback(
        self,
        path: str,
        to_version: int | None = None,
        *,
        to_revision: int | None = None,
        ctx: WriteContext | None = None,
    ) -> SettingMeta:
        return self._run(self._live.rollback(path, to_version, to_revision=to_revision, ctx=ctx))

    def history(self, path: str, *, limit: int | None = None) -> list[HistoryItem]:
        return self._run(self._live.history(path, limit=limit))

    def resync(self) -> None:
        """Catch up from the store now (normally the bus and the periodic check do this)."""
        self._run(self._live.resync())

    def check_once(self) -> None:
        self._run(self._live.check_once())

    # ----- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the store and bus connections and stop the background thread; a second call does nothing."""
        if self._loop.is_closed():
            return
        try:
            self._run(self._live.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def __enter__(self) -> SyncConfig:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout)


def connect_sync(*args: Any, **kwargs: Any) -> SyncConfig:
    """``accord.connect`` for non-async code: same arguments, returns a SyncConfig.

    Close it with ``cfg.close()`` or use it as ``with accord.connect_sync(...) as cfg:``.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=_run_loop, args=(loop,), name="accord-config", daemon=True)
    thread.start()
    try:
        live = asyncio.run_coroutine_threadsafe(connect(*args, **kwargs), loop).result()
    except BaseException:
        _stop(loop, thread)
        raise
    try:
        return SyncConfig(loop, thread, live)
    except BaseException:
        asyncio.run_coroutine_threadsafe(live.aclose(), loop).result()
        _stop(loop, thread)
        raise


def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.close()
