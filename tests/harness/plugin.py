"""The pytest plugin of the suite (registered once, in tests/conftest.py): fixtures backed by real processes.

Shared session servers keep ordinary tests fast; `own_redis` / `own_pg` give a test a server of its own
that it may kill or restart without disturbing anyone else. `store_backend` runs a test on each of the
three backends. All fixtures yield plain values so sync and async tests use them alike.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.harness.accord_server import AccordServers
from tests.harness.backends import BACKENDS, Backend, backend_for
from tests.harness.postgres_server import PostgresDatabase, PostgresServer
from tests.harness.process import running
from tests.harness.redis_server import RedisServer

OWN_PG_DATABASE = "accord"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running(RedisServer(tmp_path_factory.mktemp("redis"))) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """Restarts the shared server if an earlier test killed it, and empties it so tests cannot see each other."""
    if not redis_server.is_running():
        redis_server.start()
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture(scope="session")
def server_root() -> Iterator[Path]:
    """PostgreSQL data lives outside pytest's temp root: pytest re-locks that root (0700) whenever another
    session starts, and the clusters, running as the postgres user, would lose their data directories."""
    root = Path(tempfile.mkdtemp(prefix="accord-pg-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_template(server_root: Path) -> Iterator[Path]:
    """One initdb per session (~1 s); every other cluster is a copy of this never-started data dir (~0.2 s)."""
    template = PostgresServer(server_root / "template")
    template.init()
    try:
        yield template.data_dir
    finally:
        template.destroy()


def new_cluster(server_root: Path, pg_template: Path, name: str) -> PostgresServer:
    """A started cluster copied from the template, for a fixture to `destroy()` when done."""
    server = PostgresServer(server_root / name)
    server.init(template=pg_template)
    try:
        server.start()
    except BaseException:
        server.destroy()
        raise
    return server


@pytest.fixture(scope="session")
def pg_server(server_root: Path, pg_template: Path) -> Iterator[PostgresServer]:
    server = new_cluster(server_root, pg_template, "shared")
    try:
        yield server
    finally:
        server.destroy()


def database_name(test_name: str) -> str:
    """Readable in server logs, unique across reruns, and within PostgreSQL's 63-byte identifier limit."""
    slug = re.sub(r"[^a-z0-9_]+", "_", test_name.lower()).strip("_")[:40]
    return f"t_{slug}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def pg_url(pg_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database per test on the shared cluster, which is restarted first if an earlier test killed it."""
    if not pg_server.is_running():
        pg_server.start()
    name = database_name(request.node.name)
    url = pg_server.create_database(name)
    yield url
    if pg_server.is_running():
        pg_server.drop_database(name)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A running Redis only this test uses, so it may `kill()` / `restart()` it freely."""
    with running(RedisServer(tmp_path / "own-redis")) as server:
        yield server


@pytest.fixture
def own_pg(server_root: Path, pg_template: Path) -> Iterator[PostgresDatabase]:
    """A running cluster only this test uses, with one database; `own_pg.server` may be killed and restarted."""
    server = new_cluster(server_root, pg_template, f"own-{uuid.uuid4().hex[:8]}")
    try:
        server.create_database(OWN_PG_DATABASE)
        yield PostgresDatabase(server, OWN_PG_DATABASE)
    finally:
        server.destroy()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/accord.db"


@pytest.fixture(params=BACKENDS)
def store_backend(request: pytest.FixtureRequest) -> Backend:
    """One store per test, on each of the three backends in turn (test ids end in [sqlite] and so on)."""
    return backend_for(request, request.param)


@pytest.fixture
def accord_servers(tmp_path: Path) -> Iterator[AccordServers]:
    """`accord serve` processes started on demand; every one is stopped when the test ends, whatever happens."""
    servers = AccordServers(tmp_path)
    try:
        yield servers
    finally:
        servers.close()
