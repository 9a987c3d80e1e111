"""`accord serve --workers 2`: each worker gets the database from its parent's app factory, not the environment."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.harness import AccordServer, running


def test_two_workers_serve_the_database_named_on_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "named.db"
    cwd = tmp_path / "elsewhere"
    args = ("--workers", "2", "--db-url", f"sqlite:///{db}")
    server = AccordServer("", None, cwd, log_level="warning", expect_token=True, args=args)
    with running(server):
        urls = set()
        for _ in range(30):  # a new connection each time, so the kernel hands them to both workers
            headers = {"Connection": "close", "Authorization": f"Bearer {server.token}"}  # /readyz names URLs only so
            answer = httpx.get(f"{server.url}/readyz", timeout=10, headers=headers)
            urls.add(answer.json()["dependencies"]["database"]["url"])
        assert urls == {f"sqlite+aiosqlite:///{db}"}
        assert not (cwd / "accord.db").exists()  # no worker fell back to the embedded default
