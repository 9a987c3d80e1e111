"""The harness must really own live processes, or every failure-handling test built on it proves nothing."""

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis
import redis.asyncio

from tests.harness import (
    BACKENDS,
    AccordServers,
    Backend,
    PostgresDatabase,
    PostgresServer,
    RedisServer,
    ServerError,
    free_port,
    port_in_use,
)
from tests.harness.accord_server import TOKEN_RE
from tests.proxy.proxy_harness import Processes


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_free_port_is_not_in_use() -> None:
    assert not port_in_use(free_port())


def test_busy_port_is_detected(busy_port: int) -> None:
    assert port_in_use(busy_port)


def test_redis_url_answers_ping_sync(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        assert client.ping()
        assert client.dbsize() == 0


async def test_redis_url_answers_ping_async(redis_url: str, redis_server: RedisServer) -> None:
    assert redis_server.port not in (6379,)
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await client.ping()
    finally:
        await client.aclose()


async def test_own_redis_kill_then_restart_comes_back_empty(own_redis: RedisServer) -> None:
    port = own_redis.port
    client = redis.asyncio.Redis.from_url(own_redis.url)
    try:
        await client.set("key", "value")
        await client.save()
        own_redis.kill()
        assert not own_redis.is_running()
        with pytest.raises(redis.ConnectionError):
            await client.ping()

        own_redis.restart()
        assert own_redis.is_running()
        assert own_redis.port == port
        assert await client.ping()
        assert await client.dbsize() == 0
    finally:
        await client.aclose()


def test_own_redis_graceful_stop_and_restart(own_redis: RedisServer) -> None:
    with redis.Redis.from_url(own_redis.url) as client:
        client.set("key", "value")
        own_redis.restart()
        assert client.get("key") is None
        own_redis.stop()
        assert not own_redis.is_running()
        with pytest.raises(redis.ConnectionError):
            client.ping()


def test_redis_url_restarts_a_killed_shared_server(redis_server: RedisServer, request: pytest.FixtureRequest) -> None:
    with redis.Redis.from_url(redis_server.url) as client:
        client.set("left-over", "1")
    redis_server.kill()
    url = request.getfixturevalue("redis_url")
    with redis.Redis.from_url(url) as client:
        assert client.ping()
        assert client.get("left-over") is None


def test_redis_refuses_a_busy_port(tmp_path: Path, busy_port: int) -> None:
    server = RedisServer(tmp_path, port=busy_port)
    with pytest.raises(ServerError, match=f"port {busy_port} .* already in use"):
        server.start()
    assert not server.is_running()


def test_redis_reports_a_missing_binary(tmp_path: Path) -> None:
    with pytest.raises(ServerError, match="not found"):
        RedisServer(tmp_path, executable="/nonexistent/redis-server").start()


async def test_pg_url_runs_queries(pg_url: str, pg_server: PostgresServer) -> None:
    assert f":{pg_server.port}/" in pg_url
    assert pg_server.port != 5432
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("select 1") == 1
    finally:
        await conn.close()


async def test_pg_url_gives_each_test_a_fresh_database(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("select count(*) from pg_tables where schemaname = 'public'") == 0
        await conn.execute("create table leak_check (id int)")
    finally:
        await conn.close()


async def test_dropped_database_is_gone(pg_server: PostgresServer) -> None:
    url = pg_server.create_database("t_drop_me")
    pg_server.drop_database("t_drop_me")
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await asyncpg.connect(url)


async def test_own_pg_kill_keeps_committed_data(own_pg: PostgresDatabase) -> None:
    conn = await asyncpg.connect(own_pg.url)
    try:
        await conn.execute("create table t (v text)")
        await conn.execute("insert into t values ('committed')")
        own_pg.server.kill()
        assert not own_pg.server.is_running()
        with pytest.raises((asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)):
            await conn.fetchval("select 1")
    finally:
        conn.terminate()
    with pytest.raises(OSError):
        await asyncpg.connect(own_pg.url)

    own_pg.server.start()
    conn = await asyncpg.connect(own_pg.url)
    try:
        assert await conn.fetchval("select v from t") == "committed"
    finally:
        await conn.close()
    assert "database system was interrupted" in own_pg.server.log_path.read_text()


async def test_own_pg_graceful_restart_keeps_data(own_pg: PostgresDatabase) -> None:
    conn = await asyncpg.connect(own_pg.url)
    try:
        await conn.execute("create table t as select 42 as v")
    finally:
        await conn.close()
    own_pg.server.restart()
    conn = await asyncpg.connect(own_pg.url)
    try:
        assert await conn.fetchval("select v from t") == 42
    finally:
        await conn.close()


def test_own_pg_is_separate_from_the_shared_server(own_pg: PostgresDatabase, pg_server: PostgresServer) -> None:
    assert own_pg.server.port != pg_server.port
    assert own_pg.server.data_dir != pg_server.data_dir


async def test_pg_url_restarts_a_killed_shared_server(
    pg_server: PostgresServer, request: pytest.FixtureRequest
) -> None:
    pg_server.kill()
    assert not pg_server.is_running()
    url = request.getfixturevalue("pg_url")
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("select 1") == 1
    finally:
        await conn.close()


def test_pg_refuses_a_busy_port(tmp_path: Path, pg_template: Path, busy_port: int) -> None:
    server = PostgresServer(tmp_path / "pg", port=busy_port)
    try:
        server.init(template=pg_template)
        with pytest.raises(ServerError, match=f"port {busy_port} .* already in use"):
            server.start()
        assert not server.is_running()
    finally:
        server.destroy()


def test_pg_init_is_idempotent(tmp_path: Path, pg_template: Path) -> None:
    server = PostgresServer(tmp_path / "pg")
    try:
        server.init(template=pg_template)
        conf = (server.data_dir / "postgresql.conf").read_text()
        server.init(template=pg_template)
        server.init()
        assert (server.data_dir / "postgresql.conf").read_text() == conf
    finally:
        server.destroy()


def test_pg_start_without_init_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(ServerError, match="not initialized"):
        PostgresServer(tmp_path / "pg").start()


def test_sqlite_url_points_into_tmp_path(sqlite_url: str, tmp_path: Path) -> None:
    assert sqlite_url == f"sqlite:///{tmp_path}/accord.db"
    assert tmp_path.is_dir()


def test_redis_that_exits_at_once_reports_its_log(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, executable="false")
    with pytest.raises(ServerError, match=r"exited with code 1; log .*redis\.log"):
        server.start()
    assert not server.is_running()


# --- each server: kill, restart and logs ---------------------------------------------------------------------


def test_redis_logs_show_each_start(own_redis: RedisServer) -> None:
    assert own_redis.logs().count("Ready to accept connections") == 1
    own_redis.kill()
    own_redis.start()
    assert own_redis.logs().count("Ready to accept connections") == 2


def test_pg_logs_show_a_clean_stop_and_the_recovery_after_a_kill(own_pg: PostgresDatabase) -> None:
    server = own_pg.server
    port = server.port
    server.stop()
    assert not server.is_running()
    assert "database system is shut down" in server.logs()
    server.start()
    server.kill()
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and _cwd_is(pid, server.data_dir)]
    server.restart()
    assert server.is_running() and server.port == port
    assert server.logs().count("database system is ready to accept connections") == 3


def _cwd_is(pid: str, directory: Path) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/cwd") == str(directory.resolve())
    except OSError:
        return False


def test_accord_server_kill_restart_and_logs(sqlite_url: str, accord_servers: AccordServers) -> None:
    server = accord_servers.start(sqlite_url, "", log_level="info", expect_token=True)
    token, port = server.token, server.port
    assert token and TOKEN_RE.fullmatch(token)
    with server.admin() as admin:
        assert admin.get("/api/config").status_code == 200
    server.kill()
    assert not server.is_running()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/healthz", timeout=2)
    server.restart()
    assert server.port == port and server.token == token, "the token is printed once, on the first start"
    with server.admin() as admin:
        assert admin.get("/api/config").status_code == 200
    server.stop()
    assert server.logs().count("Uvicorn running on") == 2
    assert token in server.stdout_path.read_text()


def test_accord_servers_closes_every_server(sqlite_url: str, tmp_path: Path) -> None:
    servers = AccordServers(tmp_path / "servers")
    started = [servers.start(sqlite_url, ""), servers.start(sqlite_url, "")]
    assert len({server.workdir for server in started}) == 2
    servers.close()
    assert not any(server.is_running() for server in started)


def test_echo_upstream_and_proxy_kill_restart_and_logs(tmp_path: Path, pg_url: str, redis_url: str) -> None:
    procs = Processes(tmp_path)
    try:
        upstream = procs.upstream()
        proxy = procs.proxy(upstream.url, pg_url, redis_url, debug=True)
        body = {"model": "m", "messages": [{"role": "user", "content": "hi alice@example.com"}]}
        assert httpx.post(f"{proxy.url}/v1/chat/completions", json=body, timeout=30).status_code == 200
        assert len(upstream.received()) == 1
        for child in (upstream, proxy):
            port = child.port
            child.kill()
            assert not child.is_running()
            child.restart()
            assert child.is_running() and child.port == port
        assert upstream.received() == [], "a restarted echo upstream remembers nothing"
        assert httpx.post(f"{proxy.url}/v1/chat/completions", json=body, timeout=30).status_code == 200
        assert "alice@example.com" not in upstream.received()[0]["body"]
        assert proxy.logs().count("Uvicorn running on") == 2, proxy.logs()[-2000:]
    finally:
        procs.close()
    assert not upstream.is_running() and not proxy.is_running()


# --- the backend fixture -------------------------------------------------------------------------------------


async def test_store_backend_gives_each_backend_its_own_store(store_backend: Backend) -> None:
    assert store_backend.name in BACKENDS
    assert store_backend.db_url.startswith("sqlite:///" if store_backend.name == "sqlite" else "postgresql://")
    assert store_backend.has_redis == (store_backend.name == "postgres_redis")
    if store_backend.has_redis:
        client = redis.asyncio.Redis.from_url(store_backend.redis_url)
        try:
            assert await client.dbsize() == 0
        finally:
            await client.aclose()
