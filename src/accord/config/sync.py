"""LiveConfig for scripts and synchronous code.

The LiveConfig lives on its own event loop in a daemon thread, so this works the same from a
plain script, a thread pool, or even code that already runs inside some other event loop.
Reads go straight to memory; writes block until the store committed them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from accord.config.connect import connect
from accord.config.live import ChangeCallback, LiveConfig
from accord.config.values import HistoryItem, SettingMeta

T = TypeVar("T")


class SyncConfig:
    """A blocking facade over a LiveConfig running in a background thread. Create with ``connect_sync``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread, live: LiveConfig) -> None:
        self._loop = loop
        self._thread = thread
        self._live = live
        self.timeout = 30.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._live, name)

    def get(self, path: str) -> Any:
        return self._live.get(path)

    def meta(self, path: str) -> SettingMeta:
        return self._live.meta(path)

    def set(self, path: str, value: object, *, expect_version: int | None = None) -> SettingMeta:
        return self._run(self._live.set(path, value, expect_version=expect_version))

    def delete(self, path: str, *, expect_version: int | None = None) -> SettingMeta:
        return self._run(self._live.delete(path, expect_version=expect_version))

    def rollback(self, path: str, to_version: int) -> SettingMeta:
        return self._run(self._live.rollback(path, to_version))

    def history(self, path: str, *, limit: int | None = None) -> list[HistoryItem]:
        return self._run(self._live.history(path, limit=limit))

    def on_change(self, prefix: str, callback: ChangeCallback) -> Callable[[], None]:
        """Callbacks run on the background thread; keep them short or hand work to your own queue."""
        return self._live.on_change(prefix, callback)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._live.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> SyncConfig:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout)


def connect_sync(*args: Any, **kwargs: Any) -> SyncConfig:
    """``accord.connect`` for non-async code: same arguments, returns a SyncConfig."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=_run_loop, args=(loop,), name="accord-config", daemon=True)
    thread.start()
    try:
        live = asyncio.run_coroutine_threadsafe(connect(*args, **kwargs), loop).result()
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        raise
    return SyncConfig(loop, thread, live)


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.close()
