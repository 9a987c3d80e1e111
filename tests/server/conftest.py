"""Fixtures that run `accord serve` as real processes on real PostgreSQL and Redis.

`serve(db_url, redis_url)` starts a server (after the settings are declared) and stops it at teardown.
`module_stack` is one database and one private Redis shared by a module's tests, for modules that
run many requests against one long-lived server.
"""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.harness import AccordServer, AccordServers, PostgresServer, RedisServer, running, wait_until
from tests.server.server_harness import Serve, Stack, declare


@pytest.fixture
def serve(accord_servers: AccordServers) -> Serve:
    """A factory: `serve(db_url, redis_url, declare_first=True, **AccordServer options)` -> a healthy server."""

    def start(db_url: str, redis_url: str, *, declare_first: bool = True, **options: Any) -> AccordServer:
        if declare_first:
            declare(db_url, redis_url)
        return accord_servers.start(db_url, redis_url, **options)

    return start


@pytest.fixture(scope="module")
def module_stack(
    pg_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    """A database of its own on the session cluster, and a Redis nobody else flushes, for one module."""
    if not pg_server.is_running():
        pg_server.start()
    name = "m_" + request.module.__name__.rsplit(".", 1)[-1][:40]
    pg_server.drop_database(name)
    db_url = pg_server.create_database(name)
    try:
        with running(RedisServer(tmp_path_factory.mktemp("module-redis"))) as redis:
            yield Stack(db_url, redis.url)
    finally:
        if pg_server.is_running():
            pg_server.drop_database(name)


@pytest.fixture(scope="module")
def module_server(module_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AccordServer]:
    """One server for a whole module, on `module_stack`, with the test settings declared."""
    declare(module_stack.db_url, module_stack.redis_url)
    server = AccordServer(module_stack.db_url, module_stack.redis_url, tmp_path_factory.mktemp("module-server"))
    with running(server):
        # Taking the leader lease writes one revision (registry/lease/leader); tests that count revisions
        # ("a dry run writes nothing") start once it is written, not while it may still land.
        wait_until(lambda: httpx.get(f"{server.url}/v1/status/leader").json(), timeout=30, what="a leader")
        yield server
