"""The one listen-and-reconnect loop behind every bus that holds a connection open (Redis, PostgreSQL).

A bus supplies a session: connect, subscribe, call ``connected()``, then deliver messages until the
connection is lost. The loop runs sessions one after another until it is closed, waiting a backoff
delay (with jitter, so a fleet does not reconnect in step) after each lost connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from accord.bus.types import EventHandler, Resync
from accord.core.retry import backoff_delays

log = logging.getLogger("accord.bus")
Connected = Callable[[], Awaitable[None]]
Session = Callable[[Connected, EventHandler], Awaitable[None]]


class ReconnectingListener:
    """Keeps one listening session alive; ``connected`` says whether one is subscribed right now."""

    def __init__(
        self, session: Session, *, down_errors: tuple[type[BaseException], ...], what: str, task_name: str
    ) -> None:
        self._session = session
        self._down_errors = down_errors
        self._what = what
        self._task_name = task_name
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._closing = False

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def started(self) -> bool:
        return self._task is not None

    def start(self, handler: EventHandler) -> None:
        self._task = asyncio.create_task(self._run(handler), name=self._task_name)

    async def wait_connected(self, wait_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await self._connected.wait()
        return self.connected

    async def aclose(self) -> None:
        self._closing = True
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, handler: EventHandler) -> None:
        delays = backoff_delays()

        async def connected() -> None:
            # Whatever was published while we were away is in the store: the receiver catches up from there.
            if not self._connected.is_set():
                log.info("change bus listening on %s", self._what)
            self._connected.set()
            await handler(Resync(f"{self._what} connected"))

        while not self._closing:
            try:
                await self._session(connected, handler)
                delays = backoff_delays()
            except self._down_errors as exc:
                if self._connected.is_set():
                    log.warning("lost %s: %s; reconnecting in the background", self._what, exc)
                self._connected.clear()
                await asyncio.sleep(next(delays))
            finally:
                self._connected.clear()
