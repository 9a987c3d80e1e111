"""The change bus of a remote client: one long-lived Server-Sent Events stream from an accord server.

The server says, with every event, the revision of the one before it (``after``): everything in
between touched nothing this token sees. The bus hands the replica an empty placeholder for each of
those revisions and then the change, so the replica's own contiguity check finds any gap and resyncs
from the server, exactly as over Redis. A dropped stream moves to the next server with backoff and
resumes from the replica's revision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from accord.bus.types import Applied, EventHandler, Resync, nothing_applied
from accord.core.errors import AccordError, CompactedError
from accord.core.retry import backoff_delays
from accord.remote.event_stream import open_event_stream
from accord.remote.servers import Servers, shown_addr
from accord.remote.wire import change_from_json, placeholder
from accord.store.types import Change

log = logging.getLogger("accord.remote")
STALE_S = 45.0  # three missed keepalives: the server or the path to it is gone
STREAM_CONNECT_S = 5.0  # the stream's bound to connect and to read an error answer (calls: servers.CONNECT_TIMEOUT_S)
MAX_PLACEHOLDERS = 10_000  # a longer quiet stretch is cheaper as one resync


class RemoteStreamBus:
    """A ChangeBus that listens to ``/api/remote/stream`` and publishes nothing (the server announces writes)."""

    def __init__(self, servers: Servers, prefixes: Sequence[str]) -> None:
        self._servers = servers
        self._prefixes = list(prefixes)
        self._handler: EventHandler | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._seen = 0
        self.position: Callable[[], int] = lambda: self._seen
        # the replica's apply_next: a change applied in the socket's read callback when it can be, no task woken
        self.apply_now: Callable[[Change], bool] | None = None
        self.server: str | None = None
        self.reconnects = 0
        self.resyncs = 0  # how often the stream had the replica catch up from history
        self.applied_at_once = 0  # events applied in the read callback (the rest went through the reading task)

    @property
    def mode(self) -> str:
        return "remote"

    @property
    def degraded(self) -> bool:
        return not self._connected.is_set()

    @property
    def fallback_active(self) -> bool:
        return False

    async def start(self, handler: EventHandler, *, applied: Applied = nothing_applied) -> None:
        self._handler = handler
        self._task = asyncio.create_task(self._run(), name="accord-remote-stream")

    async def wait_connected(self, wait_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await self._connected.wait()
        return self._connected.is_set()

    async def publish(self, change: object) -> None:
        return None

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=5.0)

    # ----- the stream ---------------------------------------------------------------------------

    async def _run(self) -> None:
        delays = backoff_delays()
        while True:
            try:
                await self._listen_once()
                delays = backoff_delays()  # it was up: the next drop starts the backoff over
            except Exception as exc:  # whatever ended this stream, the next server is tried
                log.warning("change stream from %s lost: %s", shown_addr(self._servers.base), _why(exc))
            self._connected.clear()
            self._servers.fail_over()
            self.reconnects += 1
            await asyncio.sleep(next(delays))

    async def _listen_once(self) -> None:
        params: dict[str, object] = {"from_revision": self.position(), "prefix": self._prefixes}
        servers = self._servers
        async with open_event_stream(
            servers.base + "/api/remote/stream",
            params,
            servers.headers,
            tls=servers.tls,
            connect_timeout=STREAM_CONNECT_S,
            stale_s=STALE_S,
        ) as stream:
            if stream.status != 200:
                error = servers.error(await stream.error_answer(STREAM_CONNECT_S))
                if isinstance(error, CompactedError):
                    await self._deliver_resync(error.detail)  # the replica reloads its snapshot, then we resume
                    return
                raise error
            self._seen = self.position()
            if self.apply_now is not None:
                stream.take = self._take
            async for event, data in stream.events():
                await self._on(event, orjson.loads(data))

    async def _on(self, event: str, body: dict[str, Any]) -> None:
        if event == "hello":
            self.server = str(body.get("server", ""))
            self._connected.set()
        elif event == "resync":
            await self._deliver_resync(str(body.get("reason", "the server asked")))
        elif event in ("change", "skip"):
            await self._advance(int(body["after"]), body)

    async def _advance(self, after: int, body: dict[str, Any]) -> None:
        assert self._handler is not None
        change = change_from_json(body["change"]) if "change" in body else None
        upto = change.revision - 1 if change is not None else int(body["revision"])
        start = max(after, self._seen) + 1
        if upto - start >= MAX_PLACEHOLDERS:
            await self._deliver_resync("a long stretch of revisions this token does not see")
        else:
            for revision in range(start, upto + 1):
                await self._handler(placeholder(revision))
        if change is not None:
            await self._handler(change)
        self._seen = max(self._seen, upto if change is None else change.revision)

    def _take(self, event: str, data: bytes) -> bool:
        """A change or skip applied as it is read, if the replica takes all of it now; False: the task does the rest.

        What was applied here moves ``_seen``, so the task's ``_advance`` of the same event starts after it.
        """
        apply = self.apply_now
        if apply is None or event not in ("change", "skip"):
            return False
        body = orjson.loads(data)
        change = change_from_json(body["change"]) if "change" in body else None
        upto = change.revision - 1 if change is not None else int(body["revision"])
        start = max(int(body["after"]), self._seen) + 1
        if upto - start >= MAX_PLACEHOLDERS:
            return False
        for revision in range(start, upto + 1):
            if not apply(placeholder(revision)):
                return False
            self._seen = revision
        if change is not None:
            if not apply(change):
                return False
            self._seen = change.revision
        self.applied_at_once += 1
        return True

    async def _deliver_resync(self, reason: str) -> None:
        assert self._handler is not None
        self.resyncs += 1
        log.info("remote stream: resync (%s)", reason)
        await self._handler(Resync(reason))
        self._seen = self.position()


def _why(exc: BaseException) -> str:
    if isinstance(exc, AccordError):
        return exc.detail
    return str(exc) or type(exc).__name__
