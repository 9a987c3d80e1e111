"""PostgreSQL LISTEN/NOTIFY change bus, for deployments without Redis."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg

from accord.bus.auth import BusAuth, claimed_revision
from accord.bus.reconnect import Connected, ReconnectingListener
from accord.bus.types import Applied, BusUnavailableError, EventHandler, nothing_applied
from accord.bus.wire import PG_NOTIFY_MAX_BYTES, decode_change, encode_change
from accord.core.errors import StoreUnavailableError
from accord.store.dialect import ssl_args
from accord.store.types import Change

CHANNEL = "accord_changes"
_DOWN_ERRORS: tuple[type[BaseException], ...] = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class PgNotifyBus:
    """One connection listens; another publishes with ``pg_notify``. Both reconnect on their own."""

    def __init__(self, dsn: str, *, display_url: str, auth: BusAuth) -> None:
        self._dsn = dsn
        self._ssl = ssl_args(dsn)
        self.auth = auth
        self._display = display_url
        self._publisher: Any = None
        self._applied: Applied = nothing_applied
        self._publish_lock = asyncio.Lock()
        self._listener = ReconnectingListener(
            self._listen_once,
            down_errors=(*_DOWN_ERRORS, StoreUnavailableError),
            what=f"the postgres listener on {display_url}",
            task_name="accord-pg-bus",
        )

    @property
    def mode(self) -> str:
        return "postgres"

    @property
    def degraded(self) -> bool:
        return not self._listener.connected

    @property
    def fallback_active(self) -> bool:
        return False

    async def start(self, handler: EventHandler, *, applied: Applied = nothing_applied) -> None:
        self._applied = applied
        self._listener.start(handler)

    async def wait_connected(self, wait_s: float) -> bool:
        return await self._listener.wait_connected(wait_s)

    async def publish(self, change: Change) -> None:
        payload = await self.auth.seal(encode_change(change, max_bytes=PG_NOTIFY_MAX_BYTES))
        async with self._publish_lock:
            try:
                if self._publisher is None or self._publisher.is_closed():
                    self._publisher = await asyncpg.connect(self._dsn, timeout=2, **self._ssl)
                await self._publisher.execute("SELECT pg_notify($1, $2)", CHANNEL, payload, timeout=2)
            except _DOWN_ERRORS as exc:
                await self._drop_publisher()
                raise BusUnavailableError(f"postgres notify on {self._display}: {exc}") from exc

    async def aclose(self) -> None:
        await self._listener.aclose()
        await self._drop_publisher()

    async def _drop_publisher(self) -> None:
        if self._publisher is not None:
            with contextlib.suppress(*_DOWN_ERRORS):
                await self._publisher.close(timeout=1)
            self._publisher = None

    async def _listen_once(self, connected: Connected, handler: EventHandler) -> None:
        conn = await asyncpg.connect(self._dsn, timeout=2, **self._ssl)
        lost = asyncio.Event()
        queue: asyncio.Queue[str] = asyncio.Queue()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, lambda _c, _pid, _ch, payload: queue.put_nowait(payload))
            await connected()
            await self._pump(conn, queue, lost, handler)
        finally:
            with contextlib.suppress(*_DOWN_ERRORS):
                await conn.close(timeout=1)

    async def _pump(self, conn: Any, queue: asyncio.Queue[str], lost: asyncio.Event, handler: EventHandler) -> None:
        while not lost.is_set():
            try:
                # Not asyncio.wait_for: on 3.11 it swallows a cancel that lands as a payload arrives, and aclose hangs.
                async with asyncio.timeout(2.0):
                    payload = await queue.get()
            except TimeoutError:
                await conn.execute("SELECT 1", timeout=2)  # a dead server is only noticed when we talk to it
                continue
            claimed = claimed_revision(payload)
            if claimed is not None and claimed <= self._applied():
                continue  # already applied (this process's own write, or one the Redis bus brought)
            body = await self.auth.open(payload)
            change = decode_change(body) if body is not None else None
            if change is not None:
                await handler(change)
        raise ConnectionResetError("postgres listener connection terminated")
