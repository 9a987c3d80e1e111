"""The proxy's connection to its model API: HTTP/1.1 on asyncio streams over a small pool of kept-alive connections.

An httpx request costs about 0.9 ms of CPU on this path (its cookie jar, auth and redirect layers, its
models, anyio underneath): more than the rest of the proxy's per-request work together, and the issue's
budget is 0.5 ms in all (docs/BENCHMARKS.md, "Proxy overhead"). The proxy sends every request to one
origin, so a pool of connections to that origin, requests written as bytes and answers parsed by httptools
(llhttp, the parser uvicorn reads the callers' requests with), is all it needs; h11 cost about 0.1 ms more
per request than httptools in the same measurement. httpx stays for what this does not
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

import httptools
import httpx

__all__ = ["Answer", "FastUpstream", "HttpxUpstream", "Upstream", "open_upstream"]

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
    """``FastUpstream`` unless the environment routes the upstream through a proxy or its URL holds credentials."""
    parts = urlsplit(base)
    if parts.username is not None or parts.password is not None or _environment_proxy(parts):
        return HttpxUpstream(base, timeout)
    return FastUpstream(base, timeout)


def _environment_proxy(parts: SplitResult) -> bool:
    """Whether HTTP(S)_PROXY or ALL_PROXY applies to the upstream (NO_PROXY may exempt it), as httpx decides."""
    proxies = urllib.request.getproxies_environment()
    if parts.scheme not in proxies and "all" not in proxies:
        return False
    return not urllib.request.proxy_bypass(parts.netloc)  # NO_PROXY, read from the environment as well


class _Parsed:
    """httptools' callbacks for one answer: its status and headers, then body pieces, then its end."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.headers: Headers = []
        self.head_done = False
        self.body: list[bytes] = []
        self.done = False
        self.extra = False  # bytes after the answer's end: the connection is not reused
        self.keep_alive = False

    def on_message_begin(self) -> None:
        self.extra = self.extra or self.done

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if self.parser.get_status_code() < 200:  # an interim answer (103 Early Hints): wait for the real one
            self.headers = []
        else:
            self.head_done = True
            self.keep_alive = self.parser.should_keep_alive()  # llhttp forgets it once the answer ends

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = self.head_done

    def ended_by_close(self) -> bool:
        """At the end of the stream: an answer framed by neither length nor chunks ends there (RFC 9112 §6.3)."""
        names = {name for name, _ in self.headers}
        return self.head_done and b"content-length" not in names and b"transfer-encoding" not in names

    def take_body(self) -> list[bytes]:
        body, self.body = self.body, []
        return body


class _Connection:
    """One kept-alive connection to the upstream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def reusable(self, now: float) -> bool:
        """Not closed by the upstream while idle (its FIN has been read by now) and not idle too long."""
        return not self.reader.at_eof() and not self.writer.is_closing() and now - self.idle_since < IDLE_EXPIRY_S

    def close(self) -> None:
        self.writer.close()

    async def feed(self, parsed: _Parsed, limit_s: float | None = None) -> None:
        """Read once (within ``limit_s`` if given) and parse what came; the end of the stream ends the answer
        only if nothing else frames it."""
        if limit_s is None:
            data = await self.reader.read(READ_SIZE)
        else:
            async with asyncio.timeout(limit_s):
                data = await self.reader.read(READ_SIZE)
        if data:
            parsed.parser.feed_data(data)
        elif parsed.ended_by_close():
            parsed.done = parsed.extra = True  # done, and the connection cannot be reused
        else:
            detail = "mid-answer" if parsed.head_done else "without answering"
            raise httpx.RemoteProtocolError(f"the upstream closed the connection {detail}")


class FastUpstream:
    """The upstream over HTTP/1.1 on asyncio streams (httptools parses the answers, as uvicorn does the
    requests): one origin, at most ``MAX_IDLE`` idle connections, none shared by two requests at once."""

    def __init__(self, base: str, timeout: float) -> None:
        url = httpx.URL(base)  # percent-encoded path and IDNA host: safe to write into a request line
        self._tls: ssl.SSLContext | None = httpx.create_ssl_context() if url.scheme == "https" else None
        self._host = url.host
        self._port = url.port or (443 if self._tls is not None else 80)
        self._authority = url.netloc
        self._prefix = url.raw_path.split(b"?", 1)[0].rstrip(b"/")
        self.timeout = timeout
        self._idle: list[_Connection] = []
        self._closed = False
        self.opened = 0  # connections made so far (tests check that they are reused)

    async def send(self, method: str, target: str, headers: Headers, body: bytes) -> Answer:
        head = self._head(method, target.encode("latin-1"), headers, body)
        connection = self._checkout() or await self._connect()
        try:
            with _translated("sending the request to"):
                connection.writer.writelines([head, body] if body else [head])
                await connection.writer.drain()
                parsed = _Parsed()
                while not parsed.head_done:
                    await connection.feed(parsed)
                return FastAnswer(self, connection, parsed)
        except BaseException:
            connection.close()
            raise

    def _head(self, method: str, target: bytes, headers: Headers, body: bytes) -> bytes:
        """The request line and headers. The caller's headers were parsed by the ASGI server; a CR or LF in
        one (from an ASGI server that lets them through) would split the request, so it is refused."""
        lines = [method.encode("ascii"), b" ", self._prefix, target, b" HTTP/1.1\r\nhost: ", self._authority]
        for name, value in headers:
            lines += (b"\r\n", name, b": ", value)
        lines.append(b"\r\naccept-encoding: " + ACCEPT_ENCODING)
        sized = bool(body) or method not in ("GET", "HEAD")
        if sized:
            lines.append(b"\r\ncontent-length: %d" % len(body))
        lines.append(b"\r\n\r\n")
        head = b"".join(lines)
        line_ends = len(headers) + 4 + sized  # request line, headers, accept-encoding, content-length, blank line
        if head.count(b"\n") != line_ends or head.count(b"\r") != line_ends or b" " in target:
            raise httpx.LocalProtocolError("a header or the path holds a line break or a space; nothing was sent")
        return head

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

    def release(self, connection: _Connection, parsed: _Parsed) -> None:
        """Keep a connection whose answer ended cleanly and that both sides would keep open; close any other."""
        if self._closed or len(self._idle) >= MAX_IDLE or parsed.extra or not parsed.keep_alive:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.append(connection)

    async def aclose(self) -> None:
        self._closed = True
        for connection in self._idle:
            connection.close()
        self._idle.clear()


class FastAnswer:
    """An answer read from one connection, which goes back to the pool once the body has been read to its end."""

    def __init__(self, pool: FastUpstream, connection: _Connection, parsed: _Parsed) -> None:
        self.status_code = parsed.parser.get_status_code()
        self.raw_headers = parsed.headers
        self._pool = pool
        self._connection: _Connection | None = connection
        self._parsed = parsed

    def header(self, name: bytes) -> str:
        return next((value.decode("latin-1") for key, value in self.raw_headers if key == name), "")

    async def aiter_bytes(self, *, each_within_timeout: bool = False) -> AsyncIterator[bytes]:
        connection, parsed = self._connection, self._parsed
        if connection is None:
            return
        decoder = _decoder(self.header(b"content-encoding"))
        limit_s = self._pool.timeout if each_within_timeout else None
        with _translated("reading the answer from"):
            while True:
                for piece in parsed.take_body():
                    if data := decoder.decompress(piece) if decoder is not None else piece:
                        yield data
                if parsed.done:
                    break
                await connection.feed(parsed, limit_s)
            if decoder is not None and (tail := decoder.flush()):
                yield tail
        self._connection = None
        self._pool.release(connection, parsed)

    async def aclose(self) -> None:
        """Stop reading: a connection whose body was not read to its end cannot carry another request."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@contextmanager
def _translated(doing: str, *, connect: bool = False) -> Iterator[None]:
    """Socket, TLS and parser errors as the httpx exceptions the handler maps (the most specific first)."""
    try:
        yield
    except TimeoutError:
        raise (httpx.ConnectTimeout if connect else httpx.ReadTimeout)(f"timed out {doing} the upstream") from None
    except httptools.HttpParserError as exc:
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
        headers = [*headers, (b"accept-encoding", ACCEPT_ENCODING)]
        # Not client.build_request: that adds the client's cookie jar, which holds what earlier answers set, to
        # every caller's request. The caller's own Cookie header goes on as sent, as with FastUpstream.
        request = httpx.Request(method, self._base + target, headers=headers, content=content)
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
