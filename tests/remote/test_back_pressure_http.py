"""Back-pressure end to end: on a real `accord serve`, an HTTP client that stops reading its stream is told to
resync, while a normal remote client on the same server keeps receiving every change as it is made.

The stalled client is a raw socket with a small receive buffer that reads the stream's first event and then
nothing. Once the kernel's buffers and the server's transport are full, the server's send for that stream
waits, its queue (QUEUE_LIMIT events) fills, and the fan-out clears it and marks it for a resync, never
waiting for it. The changes are large (16 KiB values, 50 to a transaction) so the buffers fill after a few
hundred events rather than tens of thousands.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import types
from typing import Any

import httpx
import pytest

import accord
from accord import Setting, SettingsGroup
from accord.server.routes.remote_stream import QUEUE_LIMIT
from tests.harness.accord_server import AccordServers

KEYS = 50
VALUE_BYTES = 16 * 1024
BATCHES = (QUEUE_LIMIT // KEYS) * 3  # three queues' worth, beyond any socket buffer at this size


def _body(ns: dict[str, Any]) -> None:
    ns["__annotations__"] = {f"s{i:02d}": str for i in range(KEYS)}
    ns.update({f"s{i:02d}": Setting("") for i in range(KEYS)})


Bulk: type[SettingsGroup] = types.new_class("Bulk", (SettingsGroup,), {"category": "bulk"}, _body)


def _value(batch: int, key: int) -> str:
    return f"{batch:05d}-{key:02d}-" + "x" * VALUE_BYTES


def _stalled_stream(addr: str, token: str, revision: int) -> socket.socket:
    """A stream whose reader reads its answer's head and first event, then stops reading."""
    host, port = addr.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small receive window
    sock.connect((host, int(port)))
    sock.sendall(
        f"GET /api/remote/stream?from_revision={revision}&prefix=config/ HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    sock.settimeout(10)
    head = b""
    while b"event: hello" not in head:
        chunk = sock.recv(4096)
        assert chunk, f"the server closed the stream: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    return sock


def _drain_until_resync(sock: socket.socket) -> bytes:
    """Read what the server had sent, up to and including a resync event (or fail)."""
    sock.settimeout(30)
    tail = b""
    total = 0
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            pytest.fail(f"the stalled stream ended after {total} bytes without a resync")
        total += len(chunk)
        tail = (tail + chunk)[-200_000:]
        if b"event: resync" in tail:
            at = tail.index(b"event: resync")
            return tail[at : tail.index(b"\n\n", at) + 2] if b"\n\n" in tail[at:] else tail[at:]


async def test_a_stalled_stream_is_told_to_resync_while_a_normal_client_gets_every_change(
    accord_servers: AccordServers, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="accord.remote")
    server = accord_servers.start(sqlite_url, "", expect_token=True)
    assert server.token is not None
    async with await accord.connect(addr=server.addr, token=server.token, groups=[Bulk]) as cfg:
        seen: dict[str, list[str]] = {}
        last = asyncio.Event()  # set when the last key of a batch arrives

        def record(change: Any) -> None:
            seen.setdefault(change.path, []).append(str(change.new)[:8])
            if change.path == f"bulk.s{KEYS - 1:02d}":
                last.set()

        cfg.on_change("bulk.", record)
        stalled = await asyncio.to_thread(_stalled_stream, server.addr, server.token, cfg.replica.last_revision)
        try:
            headers = {"Authorization": f"Bearer {server.token}"}
            async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as admin:
                for batch in range(BATCHES):
                    values = {f"bulk.s{i:02d}": _value(batch, i) for i in range(KEYS)}
                    last.clear()
                    done = await admin.post("/api/config/import", json={"settings": values})
                    assert done.status_code == 200, done.text
                    # the normal client has this batch before the next is written: the stalled one holds up nothing
                    async with asyncio.timeout(10):
                        await last.wait()
                    last.clear()
                    assert cfg.get(f"bulk.s{KEYS - 1:02d}") == _value(batch, KEYS - 1)
            event = await asyncio.to_thread(_drain_until_resync, stalled)
        finally:
            stalled.close()
        assert f"fell more than {QUEUE_LIMIT} changes behind".encode() in event, event
        bus = cfg.replica._propagation.bus  # the normal client's stream
        assert getattr(bus, "resyncs", None) == 0, "the normal client was told to resync"
        assert not [r for r in caplog.records if "resync" in r.getMessage()]
        expected = [f"{batch:05d}-"[:8] for batch in range(BATCHES)]
        for i in range(KEYS):
            assert [v[:6] for v in seen[f"bulk.s{i:02d}"]] == [e[:6] for e in expected], f"bulk.s{i:02d} missed one"
