"""The remote client's change stream read straight off its socket: httptools parses HTTP, we split the events.

A process may hold hundreds of remote LiveConfigs, each with its own stream, and every change reaches
all of them at once. Through httpx each received event cost about 100 µs of client CPU in httpcore
and anyio alone (a timeout scope, a selector re-registration and several generator layers per read;
profiled in docs/BENCHMARKS.md, "Remote clients"), more than the replica's apply and the callbacks
together. Here an ``asyncio.Protocol`` hands each read to httptools' C parser (status, headers,
chunked framing) and cuts the body into Server-Sent Events as it arrives; the reading task wakes
once per read, not once per layer, and not at all for an event its ``take`` hook handles in the
read's callback (the bus applies a change there when the replica can take it at once). Calls other
than the stream still go through httpx.

A stream that stays silent for ``stale_s`` (the server sends a keepalive every 15 s) is closed by a
watchdog that checks a timestamp, so no timer is re-armed per event. The stream connects directly
to the server: HTTP(S)_PROXY variables are not used for it (docs/remote.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import cast
from urllib.parse import urlencode, urlsplit

import httptools
import httpx

MAX_ERROR_BODY = 64 * 1024
MAX_PENDING_EVENTS = 10_000  # read no further until the consumer has caught up (TCP pushes back on the server)
MAX_EVENT_BYTES = 16 * 1024 * 1024  # one event larger than this is not a server of ours: the stream is dropped

Event = tuple[str, bytes]  # (event name, data)


class StreamError(ConnectionError):
    """The stream ended or could not be read; the message says why (never the token)."""


class EventStream(asyncio.Protocol):
    """One ``GET`` whose answer is ``text/event-stream``: the answer's head, then its events as they arrive."""

    def __init__(self, url: str, stale_s: float) -> None:
        self.url = url
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()  # an error answer's body (a 200's body is cut into events instead)
        self._stale_s = stale_s
        self._parser = httptools.HttpResponseParser(self)
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._head: asyncio.Future[None] = self._loop.create_future()
        self._complete = False
        self._events: deque[Event] = deque()
        self._pending = b""
        self._waiter: asyncio.Future[None] | None = None
        self._closed: BaseException | None = None
        self._paused = False
        self._last_read = self._loop.time()
        self._watchdog: asyncio.TimerHandle | None = None
        # handles an event as it is read, while the reader waits with nothing queued; False: it is queued
        self.take: Callable[[str, bytes], bool] | None = None

    # ----- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes
        self._watchdog = self._loop.call_later(self._stale_s / 3, self._check_stale)

    def data_received(self, data: bytes) -> None:
        self._last_read = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(StreamError("the server switched protocols on a change stream"))
        except httptools.HttpParserError as exc:
            self._fail(StreamError(f"the server's answer is not valid HTTP ({exc})"))

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._fail(StreamError(f"the connection was lost ({exc})" if exc else "the server closed the stream"))

    # ----- httptools callbacks -----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        if not self._head.done():
            self._head.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.status != 200:
            if len(self.body) < MAX_ERROR_BODY:
                self.body += body[: MAX_ERROR_BODY - len(self.body)]
            return
        data = self._pending + body if self._pending else body
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        *blocks, self._pending = data.split(b"\n\n")
        if len(self._pending) > MAX_EVENT_BYTES:
            self._fail(StreamError(f"an event of the change stream is larger than {MAX_EVENT_BYTES} bytes"))
            return
        for block in blocks:
            if (event := _parse_event(block)) is not None and not self._taken(event):
                self._events.append(event)
        if self._events:
            if len(self._events) >= MAX_PENDING_EVENTS and self._transport is not None and not self._paused:
                self._paused = True
                self._transport.pause_reading()
            self._wake()

    def on_message_complete(self) -> None:
        self._complete = True
        if self.status == 200:
            self._fail(StreamError("the server ended the stream"))
        else:
            self._wake()

    def _taken(self, event: Event) -> bool:
        """Whether ``take`` handled the event here, in the read's callback (only with nothing queued before it)."""
        waiter = self._waiter
        if self.take is None or self._events or waiter is None or waiter.done() or self._closed is not None:
            return False  # the reader is busy, behind, or the stream is ending: the event waits its turn
        try:
            return self.take(*event)
        except Exception as exc:  # as if the reader had raised it: the stream ends and is reconnected
            self._fail(StreamError(f"an event could not be applied ({exc!r})"))
            return True

    # ----- the reading side ---------------------------------------------------------------------

    async def head(self, within: float) -> None:
        """Wait for the status line and headers."""
        async with asyncio.timeout(within):
            await self._head

    async def error_answer(self, within: float) -> httpx.Response:
        """A non-200 answer read whole (bounded), as an httpx.Response for the shared error decoder."""
        with contextlib.suppress(StreamError, TimeoutError):
            async with asyncio.timeout(within):
                while not self._complete and self._closed is None:
                    await self._wait()
        request = httpx.Request("GET", self.url)
        return httpx.Response(self.status, headers=self.headers, content=bytes(self.body), request=request)

    async def events(self) -> AsyncIterator[Event]:
        """Each event as it arrives; StreamError once the stream ends (after every event received before)."""
        while True:
            while self._events:
                yield self._events.popleft()
            if self._paused and self._transport is not None:
                self._paused = False
                self._transport.resume_reading()
            if self._closed is not None:
                raise self._closed
            await self._wait()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.abort()  # an endless answer: nothing to wait for

    # ----- internals ----------------------------------------------------------------------------

    async def _wait(self) -> None:
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self._closed is None:
            self._closed = exc
        if not self._head.done():
            self._head.set_exception(exc)
            self._head.exception()  # retrieved here: the reader may be gone already
        self._wake()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()

    def _check_stale(self) -> None:
        if self._loop.time() - self._last_read > self._stale_s:
            self._fail(StreamError(f"no data on the change stream for {self._stale_s:g} s"))
            return
        self._watchdog = self._loop.call_later(self._stale_s / 3, self._check_stale)


def _parse_event(block: bytes) -> Event | None:
    """One Server-Sent Event; None for a comment-only block (a keepalive)."""
    name = "message"
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[6:] if line[5:6] == b" " else line[5:])
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode("utf-8", "replace")
    if not data:
        return None
    return name, b"\n".join(data)


@contextlib.asynccontextmanager
async def open_event_stream(
    url: str,
    params: dict[str, object],
    headers: dict[str, str],
    *,
    tls: ssl.SSLContext | None,
    connect_timeout: float,
    stale_s: float,
) -> AsyncIterator[EventStream]:
    """Connect, send the GET and wait for the answer's head; the stream is closed on exit."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if https else 80)
    query = urlencode(params, doseq=True)
    target = (parts.path or "/") + (f"?{query}" if query else "")
    loop = asyncio.get_running_loop()
    stream = EventStream(url + (f"?{query}" if query else ""), stale_s)
    try:
        async with asyncio.timeout(connect_timeout):
            await loop.create_connection(
                lambda: stream, host, port, ssl=tls if https else None, server_hostname=host if https else None
            )
    except TimeoutError:
        raise StreamError(f"could not connect within {connect_timeout:g} s") from None
    except OSError as exc:
        raise StreamError(f"could not connect ({exc.strerror or exc})") from None
    try:
        lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc.rpartition('@')[2]}", "Accept: text/event-stream"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        assert stream._transport is not None
        stream._transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        try:
            await stream.head(stale_s)
        except TimeoutError:
            raise StreamError(f"the server sent no answer within {stale_s:g} s") from None
        yield stream
    finally:
        stream.close()
