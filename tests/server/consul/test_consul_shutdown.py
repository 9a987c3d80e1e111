"""A stopping server answers its blocking queries instead of waiting out their `wait` (up to ten minutes).

uvicorn waits for every request in flight before it stops; without the drain hook a SIGTERM left the
server running for as long as its longest blocking query, until Kubernetes SIGKILLed it.
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from tests.harness import AccordServer
from tests.harness.waiting import wait_until


def test_sigterm_answers_every_blocking_query_and_the_server_exits(tmp_path: Path) -> None:
    server = AccordServer(f"sqlite+aiosqlite:///{tmp_path}/accord.db", "", tmp_path / "server", expect_token=True)
    server.start()
    try:
        with server.client(server.token) as http:
            assert http.put("/v1/kv/app/flag", content=b"on").status_code == 200
            index = http.get("/v1/kv/app/flag").headers["X-Consul-Index"]
        answers: list[httpx.Response] = []

        def block(path: str, params: dict[str, str]) -> None:
            with server.client(server.token) as waiting:
                waiting.timeout = httpx.Timeout(120.0)
                answers.append(waiting.get(path, params={**params, "index": index, "wait": "5m"}))

        calls = [("/v1/kv/app/flag", {}), ("/v1/kv/app/", {"recurse": ""})]
        waiters = [threading.Thread(target=block, args=call) for call in calls]
        for waiter in waiters:
            waiter.start()
        wait_until(lambda: _blocking(server) == 2, timeout=20, what="both queries to block")
        server.stop()  # fails the test if the server is still running after its stop timeout (10 s)
        for waiter in waiters:
            waiter.join(timeout=20)
        assert [a.status_code for a in answers] == [200, 200]
        assert {a.headers["X-Consul-Index"] for a in answers} == {index}, "an unchanged answer, so clients retry"
    finally:
        server.kill()


def _blocking(server: AccordServer) -> float:
    with server.client(server.token) as http:
        text = http.get("/metrics").text
    (line,) = [row for row in text.splitlines() if row.startswith("accord_blocking_queries ")]
    return float(line.split()[1])


def test_sigterm_ends_open_watch_and_remote_streams_and_the_server_exits(tmp_path: Path) -> None:
    """An open admin UI page holds /api/watch, every remote client the remote stream: both end on SIGTERM."""
    server = AccordServer(f"sqlite+aiosqlite:///{tmp_path}/accord.db", "", tmp_path / "server", expect_token=True)
    server.start()
    try:
        opened: list[str] = []
        ended: list[str] = []

        def hold(name: str, path: str, params: dict[str, str]) -> None:
            with server.client(server.token) as streaming:
                streaming.timeout = httpx.Timeout(120.0)
                with streaming.stream("GET", path, params=params) as answer:
                    assert answer.status_code == 200, answer.read()
                    opened.append(name)
                    for _chunk in answer.iter_bytes():
                        pass
                ended.append(name)

        streams = [
            ("watch", "/api/watch", {"prefix": "config/"}),
            ("remote", "/api/remote/stream", {"from_revision": "0", "prefix": "config/"}),
        ]
        holders = [threading.Thread(target=hold, args=stream, daemon=True) for stream in streams]
        for holder in holders:
            holder.start()
        wait_until(lambda: len(opened) == 2, timeout=20, what="both streams open")
        server.stop()  # fails the test if the server is still running after its stop timeout (10 s)
        for holder in holders:
            holder.join(timeout=20)
        assert sorted(ended) == ["remote", "watch"], "each stream ended with the server"
    finally:
        server.kill()
