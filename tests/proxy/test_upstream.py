"""The proxy's upstream client (proxy/upstream.py): kept-alive connections, framing, streaming, errors.

Against the echo upstream process, and against a scripted HTTP/1.1 server on loopback for what a real
model API may do that the echo does not (close an idle connection, gzip, answer without a length, an
interim 103, stop mid-answer).
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest

from accord.proxy.upstream import FastUpstream, HttpxUpstream, open_upstream
from tests.harness import EchoUpstream
from tests.proxy.proxy_harness import Processes, openai_body

JSON = [(b"content-type", b"application/json")]
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EchoUpstream]:
    procs = Processes(tmp_path_factory.mktemp("upstream-echo"))
    try:
        yield procs.upstream()
    finally:
        procs.close()


@asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[str]:
    """A loopback server running ``script`` on each connection; yields its URL."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await script(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's head and body (Content-Length framed), as the client sent them."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
    )
    return head + await reader.readexactly(length)


async def body_of(
    upstream: FastUpstream | HttpxUpstream, target: str = "/x", body: bytes = b"{}", **kwargs: bool
) -> tuple[int, bytes]:
    answer = await upstream.send("POST", target, JSON, body)
    try:
        return answer.status_code, b"".join([chunk async for chunk in answer.aiter_bytes(**kwargs)])
    finally:
        await answer.aclose()


async def test_requests_reuse_one_connection_and_concurrent_ones_get_their_own(echo: EchoUpstream) -> None:
    upstream = FastUpstream(echo.url, 10.0)
    body = json.dumps(openai_body("hello there", stream=False)).encode()
    try:
        for _ in range(5):
            answer = await upstream.send("POST", "/v1/chat/completions", JSON, body)
            content = b"".join([chunk async for chunk in answer.aiter_bytes()])
            assert answer.status_code == 200
            assert json.loads(content)["choices"][0]["message"]["content"] == "hello there"
        assert upstream.opened == 1
        answers = await asyncio.gather(*[upstream.send("POST", "/v1/chat/completions", JSON, body) for _ in range(3)])
        for answer in answers:
            assert b"hello there" in b"".join([chunk async for chunk in answer.aiter_bytes()])
        assert upstream.opened == 3
        await body_of(upstream, "/v1/chat/completions", body)
        assert upstream.opened == 3, "the three connections went back to the pool"
    finally:
        await upstream.aclose()


async def test_an_answer_not_read_to_its_end_closes_its_connection(echo: EchoUpstream) -> None:
    upstream = FastUpstream(echo.url, 10.0)
    body = json.dumps(openai_body("x" * 20_000, stream=True)).encode()
    try:
        answer = await upstream.send("POST", "/v1/chat/completions", JSON, body)
        async for _chunk in answer.aiter_bytes():
            break
        await answer.aclose()
        small = json.dumps(openai_body("small", stream=False)).encode()
        assert (await body_of(upstream, "/v1/chat/completions", small))[0] == 200
        assert upstream.opened == 2
    finally:
        await upstream.aclose()


async def test_a_connection_the_upstream_closed_while_idle_is_not_reused() -> None:
    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()  # then closes, without having said so

    async with scripted(answer_once) as url:
        upstream = FastUpstream(url, 5.0)
        try:
            assert await body_of(upstream) == (200, b"ok")
            await asyncio.sleep(0.05)  # the FIN arrives while the connection is idle
            assert await body_of(upstream) == (200, b"ok")
            assert upstream.opened == 2
        finally:
            await upstream.aclose()


async def test_connection_close_chunked_gzip_and_an_interim_answer() -> None:
    packed = gzip.compress(b"unpacked " * 100)
    answers = [
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nfirst",
        b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nx-final: yes\r\n"
        b"transfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n" % len(packed) + packed,
    ]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while answers:
            await read_request(reader)
            answer = answers.pop(0)
            writer.write(answer)
            await writer.drain()
            if b"connection: close" in answer:
                return

    async with scripted(serve) as url:
        upstream = FastUpstream(url, 5.0)
        try:
            assert await body_of(upstream) == (200, b"first")
            answer = await upstream.send("POST", "/x", JSON, b"{}")
            assert answer.status_code == 201
            assert answer.header(b"x-final") == "yes" and answer.header(b"link") == ""
            assert b"".join([chunk async for chunk in answer.aiter_bytes()]) == b"abcde"
            assert await body_of(upstream) == (200, b"unpacked " * 100)
            assert upstream.opened == 2, "the connection: close answer's connection was not reused; the others were"
        finally:
            await upstream.aclose()


async def test_an_answer_framed_by_the_close_of_its_connection() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it, then the close")

    async with scripted(serve) as url:
        upstream = FastUpstream(url, 5.0)
        try:
            assert await body_of(upstream) == (200, b"all of it, then the close")
        finally:
            await upstream.aclose()


async def test_a_chunked_answer_is_passed_on_as_it_arrives() -> None:
    first_read = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\nfirst \r\n")
        await writer.drain()
        await asyncio.wait_for(first_read.wait(), 5)  # the rest only once the client has the first piece
        writer.write(b"4\r\nrest\r\n0\r\n\r\n")
        await writer.drain()

    async with scripted(serve) as url:
        upstream = FastUpstream(url, 5.0)
        try:
            answer = await upstream.send("POST", "/x", JSON, b"{}")
            pieces = []
            async for chunk in answer.aiter_bytes(each_within_timeout=True):
                pieces.append(chunk)
                first_read.set()
            assert pieces == [b"first ", b"rest"]
        finally:
            await upstream.aclose()


async def test_errors_are_httpx_errors_the_handler_maps() -> None:
    async def stop_mid_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")

    async def go_quiet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n")
        await asyncio.sleep(3)

    async def say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with scripted(stop_mid_answer) as url:
        with pytest.raises(httpx.RemoteProtocolError, match="mid-answer"):
            await body_of(FastUpstream(url, 5.0))
    async with scripted(go_quiet) as url:
        with pytest.raises(httpx.ReadTimeout):
            await body_of(FastUpstream(url, 0.3), each_within_timeout=True)
    async with scripted(say_nothing) as url:
        with pytest.raises(httpx.RemoteProtocolError, match="without answering"):
            await body_of(FastUpstream(url, 5.0))
    async with scripted(say_nothing) as url:
        pass  # closed: nothing listens on its port any more
    with pytest.raises(httpx.ConnectError):
        await body_of(FastUpstream(url, 5.0))


async def test_a_line_break_in_a_forwarded_header_is_refused_before_anything_is_sent() -> None:
    received: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(65536))

    async with scripted(record) as url:
        upstream = FastUpstream(url, 5.0)
        try:
            for headers in ([(b"x-a", b"one\r\nx-injected: yes")], [(b"x-a\nx-b", b"v")]):
                with pytest.raises(httpx.LocalProtocolError):
                    await upstream.send("POST", "/x", headers, b"{}")
            with pytest.raises(httpx.LocalProtocolError):
                await upstream.send("GET", "/x y", [], b"")
            assert upstream.opened == 0 and received == []
        finally:
            await upstream.aclose()


async def test_the_base_path_and_the_host_header() -> None:
    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await read_request(reader))
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    received: list[bytes] = []
    async with scripted(reply) as url:
        upstream = FastUpstream(url + "/base/", 5.0)
        try:
            answer = await upstream.send("GET", "/v1/models/a%2Fb?x=1", [(b"authorization", b"Bearer k")], b"")
            assert answer.status_code == 204
            assert [chunk async for chunk in answer.aiter_bytes()] == []
        finally:
            await upstream.aclose()
    head = received[0].split(b"\r\n")
    assert head[0] == b"GET /base/v1/models/a%2Fb?x=1 HTTP/1.1"
    assert head[1] == b"host: " + url.removeprefix("http://").encode()
    assert b"authorization: Bearer k" in head and not any(line.startswith(b"content-length") for line in head)


def test_an_environment_proxy_or_credentials_send_through_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(open_upstream("https://api.openai.com", 5.0), FastUpstream)
    assert isinstance(open_upstream("https://user:pw@api.example.com", 5.0), HttpxUpstream)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert isinstance(open_upstream("https://api.openai.com", 5.0), HttpxUpstream)
    assert isinstance(open_upstream("http://127.0.0.1:9", 5.0), FastUpstream), "HTTPS_PROXY is for https only"
    monkeypatch.setenv("NO_PROXY", "api.openai.com")
    assert isinstance(open_upstream("https://api.openai.com", 5.0), FastUpstream)
    monkeypatch.setenv("ALL_PROXY", "http://proxy.internal:3128")
    assert isinstance(open_upstream("http://127.0.0.1:9", 5.0), HttpxUpstream)


@pytest.mark.parametrize("kind", [FastUpstream, HttpxUpstream])
async def test_a_cookie_one_answer_set_is_not_sent_for_the_next_caller(
    kind: type[FastUpstream | HttpxUpstream],
) -> None:
    """The proxy serves many callers over the same client: it keeps no cookie jar (httpx's would replay one
    caller's session cookie to every other); a caller's own Cookie header goes on as sent."""
    heads: list[bytes] = []

    async def set_cookie(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                heads.append(await read_request(reader))
            except asyncio.IncompleteReadError:
                return
            writer.write(b"HTTP/1.1 200 OK\r\nset-cookie: session=callerA; Path=/\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()

    async with scripted(set_cookie) as url:
        upstream = kind(url, 5.0)
        try:
            assert await body_of(upstream) == (200, b"ok")
            assert await body_of(upstream) == (200, b"ok")
            answer = await upstream.send("POST", "/x", [(b"cookie", b"mine=1")], b"{}")
            assert answer.header(b"set-cookie") == "session=callerA; Path=/", "the caller gets it back"
            assert b"".join([chunk async for chunk in answer.aiter_bytes()]) == b"ok"
        finally:
            await upstream.aclose()
    lines = [head.lower().split(b"\r\n") for head in heads]
    assert not any(line.startswith(b"cookie") for head in lines[:2] for line in head)
    assert [line for line in lines[2] if line.startswith(b"cookie")] == [b"cookie: mine=1"]
