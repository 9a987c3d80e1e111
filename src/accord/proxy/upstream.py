"""The proxy's connection to its model API: HTTP/1.1 with h11 over a small pool of kept-alive connections.

An httpx request costs about 0.9 ms of CPU on this path (its cookie jar, auth and redirect layers, its
models, anyio underneath): more than the rest of the proxy's per-request work together, and the issue's
budget is 0.5 ms in all (docs/BENCHMARKS.md, "Proxy overhead"). The proxy sends every request to one
origin, so a pool of h11 connections to that origin is all it needs. httpx stays for what this does not
do: an HTTP(S)_PROXY / ALL_PROXY from the environment that applies to the upstream, or credentials in
its URL.

Both kinds raise httpx's exception classes (``httpx.ConnectError``, ``ReadTimeout``, ...), so the handler
has one set of errors to map to 502/504 whichever is in use.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import urllib.request
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Protocol
from urllib.parse import SplitResult, urlsplit

import h11
import httpx

__all__ = ["Answer", "H11Upstream", "HttpxUpstream", "Upstream", "open_upstream"]

Headers = list[tuple[bytes, bytes]]

READ_SIZE = 65536
MAX_IDLE = 200  # kept-alive connections at most (httpx's max_keepalive_connections was the same)
IDLE_EXPIRY_S = 60.0
# What httpx asked for; the answer is decoded here, as httpx did, so the unmasker reads plain text.
ACCEPT_ENCODING = b"gzip, deflate"


class Answer(Protocol):
    """The upstream's answer: status and headers at once, the body as it arrives."""

    @property
    def status_code(self) -> int: ...

    @property
    def raw_headers(self) -> Headers:
        """Names in lower case, in the order sent."""
        ...

    def header(self, name: bytes) -> str:
        """The first value of ``name`` (lower case), or ``""``."""
        ...

    def aiter_bytes(self, *, each_within_timeout: bool = False) -> AsyncIterator[bytes]:
        """The body, decoded (gzip, deflate) and in the pieces it came in. ``each_within_timeout``: a read that
        waits longer than the timeout raises ``httpx.ReadTimeout`` (a stream's quiet spell); otherwise the
        caller bounds the whole read with its deadline, which costs no timer per read."""
        ...

    async def aclose(self) -> None: ...


class Upstream(Protocol):
    """Sends a request to the upstream; ``target`` is the path and query under its base URL. The caller bounds
    ``send`` by its deadline (connecting, sending, and waiting for the status and headers)."""

    async def send(self, method: str, target: str, headers: Headers, body: bytes) -> Answer: ...

    async def aclose(self) -> None: ...


def open_upstream(base: str, timeout: float) -> Upstream:
    """h11 unless the environment routes the upstream through a proxy or its URL holds credentials."""
    parts = urlsplit(base)
    if parts.username is not None or parts.password is not None or _environment_proxy(parts):
        return HttpxUpstream(base, timeout)
    return H11Upstream(base, timeout)


def _environment_proxy(parts: SplitResult) -> bool:
    """Whether HTTP(S)_PROXY or ALL_PROXY applies to the upstream (NO_PROXY may exempt it), as httpx decides."""
    proxies = urllib.request.getproxies_environment()
    if parts.scheme not in proxies and "all" not in proxies:
        return False
    return not urllib.request.proxy_bypass(parts.netloc)  # NO_PROXY, read from the environment as well


class _Connection:
    """One kept-alive connection and its h11 state."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.state = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0

    def reusable(self, now: float) -> bool:
        """Not closed by the upstream while idle (its FIN has been read by now) and not idle too long."""
        return not self.reader.at_eof() and not self.writer.is_closing() and now - self.idle_since < IDLE_EXPIRY_S

    def close(self) -> None:
        self.writer.close()

    async def next_event(self, limit_s: float | None = None) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        """The next event, reading from the socket as needed, each read within ``limit_s`` if given."""
        while True:
            event = self.state.next_event()
            if event is not h11.NEED_DATA:
                return event
            if limit_s is None:
                data = await self.reader.read(READ_SIZE)
            else:
                async with asyncio.timeout(limit_s):
                    data = await self.reader.read(READ_SIZE)
            self.state.receive_data(data)  # b"" is the end of the stream; h11 then says what that means


class H11Upstream:
    """The upstream over h11: one origin, at most ``MAX_IDLE`` idle connections, none shared by two requests."""

    def __init__(self, base: str, timeout: float) -> None:
        parts = urlsplit(base)
        self._tls: ssl.SSLContext | None = httpx.create_ssl_context() if parts.scheme == "https" else None
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._tls is not None else 80)
        self._authority = parts.netloc.encode("ascii")
        self._prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._idle: list[_Connection] = []
        self._closed = False
        self.opened = 0  # connections made so far (tests check that they are reused)

    async def send(self, method: str, target: str, headers: Headers, body: bytes) -> Answer:
        head: Headers = [(b"host", self._authority), *headers, (b"accept-encoding", ACCEPT_ENCODING)]
        if body or method not in ("GET", "HEAD"):
            head.append((b"content-length", str(len(body)).encode()))
        request = h11.Request(method=method, target=self._prefix + target, headers=head)
        connection = self._checkout() or await self._connect()
        try:
            with _translated("sending the request to"):
                state = connection.state
                out = [state.send(request) or b""]
                if body:  # passed through, not copied into one buffer
                    out += state.send_with_data_passthrough(h11.Data(data=body)) or []
                out.append(state.send(h11.EndOfMessage()) or b"")
                connection.writer.writelines(out)
                await connection.writer.drain()
                return await self._response(connection)
        except BaseException:
            connection.close()
            raise

    async def _response(self, connection: _Connection) -> H11Answer:
        while True:
            event = await connection.next_event()
            if isinstance(event, h11.Response):
                return H11Answer(self, connection, event)
            if not isinstance(event, h11.InformationalResponse):  # ConnectionClosed before any answer
                raise httpx.RemoteProtocolError("the upstream closed the connection without answering")

    def _checkout(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable(now):
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        with _translated("connecting to", connect=True):
            reader, writer = await asyncio.open_connection(
                self._host, self._port, ssl=self._tls, server_hostname=self._host if self._tls else None
            )
        self.opened += 1
        return _Connection(reader, writer)

    def release(self, connection: _Connection) -> None:
        """Keep a connection whose request and answer both ended cleanly; close any other."""
        state = connection.state
        ended = state.our_state is h11.DONE and state.their_state is h11.DONE
        if self._closed or len(self._idle) >= MAX_IDLE or not ended:
            connection.close()
            return
        state.start_next_cycle()
        connection.idle_since = time.monotonic()
        self._idle.append(connection)

    async def aclose(self) -> None:
        self._closed = True
        for connection in self._idle:
            connection.close()
        self._idle.clear()


class H11Answer:
    """An answer read from one connection, which goes back to the pool once the body has been read to its end."""

    def __init__(self, pool: H11Upstream, connection: _Connection, response: h11.Response) -> None:
        self.status_code = response.status_code
        self.raw_headers: Headers = list(response.headers)
        self._pool = pool
        self._connection: _Connection | None = connection

    def header(self, name: bytes) -> str:
        return next((value.decode("latin-1") for key, value in self.raw_headers if key == name), "")

    async def aiter_bytes(self, *, each_within_timeout: bool = False) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            return
        decoder = _decoder(self.header(b"content-encoding"))
        limit_s = self._pool.timeout if each_within_timeout else None
        with _translated("reading the answer from"):
            while True:
                event = await connection.next_event(limit_s)
                if isinstance(event, h11.Data):
                    data = decoder.decompress(event.data) if decoder is not None else bytes(event.data)
                    if data:
                        yield data
                elif isinstance(event, h11.EndOfMessage):
                    self._connection = None
                    self._pool.release(connection)
                    if decoder is not None and (tail := decoder.flush()):
                        yield tail
                    return
                else:  # the connection ended before the body did
                    raise httpx.RemoteProtocolError("the upstream closed the connection mid-answer")

    async def aclose(self) -> None:
        """Stop reading: a connection whose body was not read to its end cannot carry another request."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@contextmanager
def _translated(doing: str, *, connect: bool = False) -> Iterator[None]:
    """Socket, TLS and h11 errors as the httpx exceptions the handler maps (the most specific first)."""
    try:
        yield
    except TimeoutError:
        raise (httpx.ConnectTimeout if connect else httpx.ReadTimeout)(f"timed out {doing} the upstream") from None
    except h11.ProtocolError as exc:
        raise httpx.RemoteProtocolError(f"the upstream broke HTTP/1.1 while {doing} it: {exc}") from None
    except (OSError, ssl.SSLError) as exc:
        kind = httpx.ConnectError if connect else httpx.ReadError
        raise kind(f"{type(exc).__name__} {doing} the upstream") from None
    except zlib.error:  # a broken answer, like a connection cut mid-body
        raise httpx.RemoteProtocolError(f"the upstream's compressed answer is corrupt ({doing} it)") from None


def _decoder(encoding: str) -> zlib._Decompress | None:
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib-wrapped, as servers send it in practice
    return None


class HttpxUpstream:
    """The upstream through httpx, which honours the environment's proxies and credentials in the URL."""

    def __init__(self, base: str, timeout: float) -> None:
        self._base = base
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=MAX_IDLE, keepalive_expiry=60)
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout), limits=limits)

    async def send(self, method: str, target: str, headers: Headers, body: bytes) -> Answer:
        content = body if body or method not in ("GET", "HEAD") else None
        request = self._client.build_request(method, self._base + target, headers=headers, content=content)
        return HttpxAnswer(await self._client.send(request, stream=True))

    async def aclose(self) -> None:
        await self._client.aclose()


class HttpxAnswer:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status_code = response.status_code
        self.raw_headers: Headers = [(name.lower(), value) for name, value in response.headers.raw]

    def header(self, name: bytes) -> str:
        return str(self._response.headers.get(name.decode("latin-1"), ""))

    def aiter_bytes(self, *, each_within_timeout: bool = False) -> AsyncIterator[bytes]:
        return self._response.aiter_bytes()  # httpx's read timeout applies to every read

    async def aclose(self) -> None:
        await self._response.aclose()
