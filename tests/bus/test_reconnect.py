"""The one listen-and-reconnect loop, as both connection-holding buses use it against servers we kill."""

from __future__ import annotations

import logging

import pytest

from accord.bus.auth import BusAuth
from accord.bus.pg_bus import PgNotifyBus
from accord.bus.redis_bus import RedisChangeBus
from accord.store.engine import normalize_url
from accord.store.kv import SqlKVStore
from accord.store.types import Change
from tests.bus.test_local_bus import Inbox
from tests.config.procs_worker import eventually
from tests.harness import PostgresDatabase, PostgresServer, RedisServer


async def open_bus(
    engine: str, request: pytest.FixtureRequest
) -> tuple[RedisChangeBus | PgNotifyBus, RedisServer | PostgresServer]:
    """The deployment (namespace, signing key) is read once, before the server is killed: it stays known."""
    if engine == "redis":
        redis: RedisServer = request.getfixturevalue("own_redis")
        auth = await _auth(request.getfixturevalue("sqlite_url"))
        return RedisChangeBus(redis.url, auth), redis
    pg: PostgresDatabase = request.getfixturevalue("own_pg")
    dsn = normalize_url(pg.url).set(drivername="postgresql").render_as_string(hide_password=False)
    return PgNotifyBus(dsn, display_url=pg.url, auth=await _auth(pg.url)), pg.server


async def _auth(db_url: str) -> BusAuth:
    async with await SqlKVStore.from_url(db_url) as store:
        auth = BusAuth(store)
        await auth.deployment()
    return auth


@pytest.mark.parametrize("engine", ["redis", "postgres"])
async def test_a_bus_reconnects_after_its_server_restarts_and_asks_for_a_resync(
    engine: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    bus, server = await open_bus(engine, request)
    inbox = Inbox()
    await bus.start(inbox)
    try:
        assert await bus.wait_connected(10)
        assert inbox.resyncs() == 1 and not bus.degraded  # the receiver catches up from the store on connect

        with caplog.at_level(logging.WARNING, logger="accord.bus"):
            server.kill()
            await eventually(lambda: bus.degraded, f"the {engine} bus to notice its server is gone")
        assert any(r.getMessage().startswith("lost ") for r in caplog.records), "the loss is logged"

        server.start()
        await eventually(lambda: not bus.degraded and inbox.resyncs() == 2, "a reconnect and a second resync")
        change = Change(revision=7, key="k/after", op="put", version=1, value=b"1")
        await bus.publish(change)
        await eventually(lambda: [c.key for c in inbox.changes()] == ["k/after"], "the reconnected listener to hear")
        assert inbox.changes()[0].revision == 7
    finally:
        await bus.aclose()
