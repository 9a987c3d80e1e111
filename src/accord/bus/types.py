"""The role every change bus plays, and what it delivers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from accord.core.errors import BusUnavailableError as BusUnavailableError
from accord.store.types import Change


@dataclass(frozen=True, slots=True)
class Resync:
    """Ask the receiver to catch up from the store: after a (re)connect, or when polling saw the revision move."""

    reason: str


BusEvent = Change | Resync
EventHandler = Callable[[BusEvent], Awaitable[None]]
Applied = Callable[[], int]
"""The receiver's applied revision: a message at or below it is news to nobody and is dropped unread."""


def nothing_applied() -> int:
    return 0


class ChangeBus(Protocol):
    """Delivers committed changes to every subscribed process, at most once and possibly out of order or not at all.

    Receivers order by revision and resync from the store on gaps, so a bus only has to be fast.
    """

    @property
    def mode(self) -> str: ...

    @property
    def degraded(self) -> bool: ...

    @property
    def fallback_active(self) -> bool:
        """True while a composite bus carries changes on its fallback because its primary is down."""
        ...

    async def start(self, handler: EventHandler, *, applied: Applied = nothing_applied) -> None:
        """Deliver events to ``handler`` from now on; messages at or below ``applied()`` may be dropped unread."""
        ...

    async def wait_connected(self, wait_s: float) -> bool:
        """Wait up to ``wait_s`` for the listener ``start`` began to be subscribed; whether it is."""
        ...

    async def publish(self, change: Change) -> None: ...

    async def aclose(self) -> None: ...
