"""The bus for a single machine: in-process fan-out plus polling of the revision row.

Processes sharing one SQLite file have no channel between them, so each polls the revision
(a single-row read) and asks its receiver to resync when it moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from accord.bus.types import EventHandler, Resync
from accord.core.errors import StoreUnavailableError
from accord.store.types import Change, KVStore

log = logging.getLogger("accord.bus.local")
DEFAULT_POLL_INTERVAL_S = 0.05

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

    async def start(self, handler: EventHandler) -> None:
        self._handler = handler
        _handlers_by_store[self._store_id].add(handler)
        self._poller = asyncio.create_task(self._poll_forever(handler), name="accord-local-bus")

    async def publish(self, change: Change) -> None:
        for handler in list(_handlers_by_store[self._store_id]):
            if handler is not self._handler:
                await handler(change)

    async def aclose(self) -> None:
        if self._handler:
            _handlers_by_store[self._store_id].discard(self._handler)
        if self._poller:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    async def _poll_forever(self, handler: EventHandler) -> None:
        while True:
            await asyncio.sleep(self._interval)
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
