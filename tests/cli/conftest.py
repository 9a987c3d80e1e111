"""Fixtures for the CLI tests: a store with registered settings, and real `accord serve` processes."""

from __future__ import annotations

import pytest

import accord
from tests.cli.cli_helpers import SECRET, AccordServer, Llm, ServerFactory
from tests.harness import AccordServers


@pytest.fixture
async def llm_db(sqlite_url: str) -> str:
    """A SQLite store where an application registered the llm settings and stored a secret and a value."""
    async with await accord.connect(sqlite_url, "", groups=[Llm], watch=False) as cfg:
        await cfg.set("llm.api_key", SECRET)
        await cfg.set("llm.timeout_s", 45)
    return sqlite_url


@pytest.fixture
def start_server(accord_servers: AccordServers) -> ServerFactory:
    """`start_server(db_url, redis_url=..., env=..., expect_token=True)`: a healthy server that printed its token."""

    def start(
        db_url: str, *, redis_url: str | None = None, env: dict[str, str] | None = None, expect_token: bool = True
    ) -> AccordServer:
        quiet = {"ACCORD_START_TIMEOUT": "5", "COLUMNS": "200"} | (env or {})
        return accord_servers.start(db_url, redis_url, log_level="warning", env=quiet, expect_token=expect_token)

    return start
