"""Fixtures for the CLI tests: a store with registered settings, and real `accord serve` processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import accord
from tests.cli.cli_helpers import SECRET, AccordServer, Llm, ServerFactory


@pytest.fixture
async def llm_db(sqlite_url: str) -> str:
    """A SQLite store where an application registered the llm settings and stored a secret and a value."""
    async with await accord.connect(sqlite_url, "", groups=[Llm], watch=False) as cfg:
        await cfg.set("llm.api_key", SECRET)
        await cfg.set("llm.timeout_s", 45)
    return sqlite_url


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start `accord serve` processes on demand; every one is stopped when the test ends, whatever happens."""
    started: list[AccordServer] = []

    def start(
        db_url: str, *, redis_url: str | None = None, env: dict[str, str] | None = None, expect_token: bool = True
    ) -> AccordServer:
        server = AccordServer(tmp_path / f"server{len(started)}", db_url, redis_url, dict(env or {}))
        started.append(server)
        return server.start(expect_token=expect_token)

    try:
        yield start
    finally:
        for server in started:
            server.stop()
