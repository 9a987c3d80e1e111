"""The remote client's stream reader against a loopback HTTP server that frames its answers awkwardly on purpose."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import uvloop

from accord.core.errors import PermissionDeniedError
from accord.remote.event_stream import Event, StreamError, open_event_stream
from accord.remote.servers import decode_error

Script = Callable[[asyncio.StreamWriter], Awaitable[None]]
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@contextlib.asynccontextmanager
async def _server(script: Script) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A TCP server on loopback that reads one request head and then runs ``script``; yields its URL and the heads."""
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        try:
            await script(writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/api/remote/stream", heads
    finally:
        server.close()


async def _events(url: str, count: int, *, stale_s: float = 10.0) -> list[Event]:
    got: list[Event] = []
    async with open_event_stream(
        url,
        {"from_revision": 7, "prefix": ["config/", "env/"]},
        {"Authorization": "Bearer t0ken"},
        tls=None,
        connect_timeout=5,
        stale_s=stale_s,
    ) as stream:
        assert stream.status == 200
        async for event in stream.events():
            got.append(event)
            if len(got) == count:
                break
    return got


async def _awkward(writer: asyncio.StreamWriter) -> None:
    body = (
        b'id: 1\nevent: hello\ndata: {"revision":7}\n\n'
        b": keepalive\n\n"
        b'id: 8\r\nevent: change\r\ndata: {"a":\r\ndata: 1}\r\n\r\n'
        b'event: skip\ndata:{"revision":9}\n\n'
    )
    writer.write(HEAD)
    for i in range(0, len(body), 5):  # every event split across chunks and TCP segments
        writer.write(_chunk(body[i : i + 5]))
        await writer.drain()
        await asyncio.sleep(0.001)
    await asyncio.sleep(5)


EXPECTED = [("hello", b'{"revision":7}'), ("change", b'{"a":\n1}'), ("skip", b'{"revision":9}')]


async def test_events_split_across_chunks_with_crlf_comments_and_multiline_data_arrive_whole() -> None:
    async with _server(_awkward) as (url, heads):
        assert await _events(url, 3) == EXPECTED
    head = heads[0].decode()
    assert head.startswith("GET /api/remote/stream?from_revision=7&prefix=config%2F&prefix=env%2F HTTP/1.1\r\n")
    assert "Authorization: Bearer t0ken\r\n" in head and "Accept: text/event-stream\r\n" in head


def test_the_reader_runs_on_uvloop_which_uvicorn_gives_fastapi_apps() -> None:
    async def run() -> list[Event]:
        async with _server(_awkward) as (url, _heads):
            return await _events(url, 3)

    assert uvloop.run(run()) == EXPECTED


async def test_an_error_answer_is_read_whole_and_decodes_to_the_servers_error_class() -> None:
    body = b'{"error":"PermissionDeniedError","detail":"token t may not read config/x"}'

    async def refuse(writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
        )
        writer.write(body[:10])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(body[10:])
        await writer.drain()
        await asyncio.sleep(5)

    async with (
        _server(refuse) as (url, _heads),
        open_event_stream(url, {}, {}, tls=None, connect_timeout=5, stale_s=10) as stream,
    ):
        assert stream.status == 403
        answer = await stream.error_answer(5)
    error = decode_error(answer, server="loopback", token_hint="")
    assert isinstance(error, PermissionDeniedError) and error.detail == "token t may not read config/x"


async def test_a_silent_server_is_given_up_after_the_stale_time() -> None:
    async def silent(writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + _chunk(b"event: hello\ndata: {}\n\n"))
        await writer.drain()
        await asyncio.sleep(30)

    async with _server(silent) as (url, _heads):
        with pytest.raises(StreamError, match=r"no data on the change stream for 0.3 s"):
            await _events(url, 2, stale_s=0.3)


async def test_a_stream_cut_mid_event_delivers_what_came_before_then_fails() -> None:
    async def cut(writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + _chunk(b'event: hello\ndata: {}\n\nevent: change\ndata: {"half'))
        await writer.drain()

    got: list[Event] = []
    async with _server(cut) as (url, _heads):
        with pytest.raises(StreamError, match=r"lost|closed"):
            async with open_event_stream(url, {}, {}, tls=None, connect_timeout=5, stale_s=10) as stream:
                async for event in stream.events():
                    got.append(event)
    assert got == [("hello", b"{}")], "a half-received event was delivered"


async def test_a_refused_connection_names_the_reason() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(StreamError, match="could not connect"):
        await _events(f"http://127.0.0.1:{port}/x", 1)
