"""Consul's blocking queries over a replica: wait until a query's own index moves past the caller's.

The signal is armed *before* the query's index is read, so a change applied between the read and
the wait still wakes the waiter (no lost wake-up). Wake-ups come from the replica applying a
change — a bus message, a resync after a gap, or the periodic revision check — so a bus outage
delays an answer by at most one check interval and never loses it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from accord.replica.replica import Replica
from accord.store.types import Change

__all__ = ["DEFAULT_WAIT_S", "MAX_WAIT_S", "ChangeSignal", "effective_wait"]

DEFAULT_WAIT_S = 300.0  # Consul's DefaultQueryTime
MAX_WAIT_S = 600.0  # Consul's MaxQueryTime: longer waits are clamped, not refused


def effective_wait(wait_s: float | None) -> float:
    """Consul's timeout: default when absent or ≤ 0, clamped to the cap, plus jitter below wait/16."""
    base = DEFAULT_WAIT_S if wait_s is None or wait_s <= 0 else min(wait_s, MAX_WAIT_S)
    return base + random.uniform(0, base / 16)


class ChangeSignal:
    """Wakes every waiter when the replica applies a change (or reloads) under ``prefixes``."""

    def __init__(self, replica: Replica, prefixes: tuple[str, ...]) -> None:
        self._replica = replica
        self._prefixes = prefixes
        self._event = asyncio.Event()
        self.waiting = 0
        self.draining = False
        self._unsubscribe = [replica.on_change(self._on_change), replica.on_reload(self._on_reload)]

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self.drain()

    def drain(self) -> None:
        """The server is stopping: answer every waiter now, and new queries without blocking. A client retries
        with the index it got, against this server once it is back or another one, and misses nothing."""
        self.draining = True
        self._fire()

    async def wait_beyond(self, index_of: Callable[[], int], index: int, wait_s: float | None) -> int:
        """The query's index once it differs from ``index`` (or at the timeout); ``index`` ≤ 0 does not block.

        An index above everything the replica has seen is from another history (a restored or
        reset store): the answer returns at once so the client resets, as Consul's rule allows.
        """
        current = index_of()
        if index <= 0 or current > index or index > self._replica.last_revision or self.draining:
            return current
        loop = asyncio.get_running_loop()
        deadline = loop.time() + effective_wait(wait_s)
        self.waiting += 1
        try:
            while True:
                event = self._event  # armed before reading the index: a change in between still wakes us
                current = index_of()
                if current != index or self.draining:
                    return current
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return current
                try:
                    async with asyncio.timeout(remaining):  # not wait_for: it can swallow a cancel on 3.11
                        await event.wait()
                except TimeoutError:
                    return index_of()
        finally:
            self.waiting -= 1

    def _on_change(self, change: Change) -> None:
        if change.key.startswith(self._prefixes):
            self._fire()

    def _on_reload(self, _revision: int, _fire: bool) -> None:
        self._fire()

    def _fire(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()
