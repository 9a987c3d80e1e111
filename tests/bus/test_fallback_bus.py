"""Redis first, PostgreSQL NOTIFY underneath: a publish that cannot go through Redis still arrives."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from accord.bus.auth import BusAuth
from accord.bus.composite import FallbackChangeBus
from accord.bus.pg_bus import PgNotifyBus
from accord.bus.redis_bus import RedisChangeBus
from accord.store.kv import SqlKVStore
from tests.bus.test_local_bus import Inbox
from tests.config.procs_worker import eventually
from tests.harness import RedisServer


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[SqlKVStore]:
    async with await SqlKVStore.from_url(pg_url) as opened:
        yield opened


def fallback_bus(store: SqlKVStore, redis_url: str) -> FallbackChangeBus:
    dsn = store.listen_dsn()
    assert dsn is not None
    auth = BusAuth(store)
    return FallbackChangeBus(RedisChangeBus(redis_url, auth), PgNotifyBus(dsn, display_url=store.url, auth=auth))


def fully_connected(*buses: FallbackChangeBus) -> bool:
    return all(bus.primary.connected and not bus.fallback.degraded for bus in buses)


async def seen_on_redis(spy: aioredis.client.PubSub, revision: int) -> bool:
    message = await spy.get_message(ignore_subscribe_messages=True, timeout=0.1)
    return message is not None and b'"r":%d,' % revision in message["data"]


async def test_publishes_fall_back_to_notify_while_redis_is_down_and_return_after(
    store: SqlKVStore, own_redis: RedisServer
) -> None:
    a, b = fallback_bus(store, own_redis.url), fallback_bus(store, own_redis.url)
    received = Inbox()
    await a.start(Inbox())
    await b.start(received)
    try:
        await eventually(lambda: fully_connected(a, b), "both buses on redis and notify")
        assert (a.mode, a.fallback_active, a.degraded) == ("redis", False, False)
        async with aioredis.Redis.from_url(own_redis.url) as raw, raw.pubsub() as spy:
            await spy.subscribe((await a.primary.auth.keys()).changes_channel)
            first = await store.put("k/first", b"1")
            await a.publish(first)
            await eventually(lambda: first in received.changes(), "b to receive the first change")
            await eventually(lambda: seen_on_redis(spy, first.revision), "the first change on redis")

        own_redis.kill()
        during = await store.put("k/during", b"2")
        await a.publish(during)  # redis refuses: the fallback carries it
        await eventually(lambda: during in received.changes(), "b to receive the change through notify")
        await eventually(lambda: a.fallback_active and b.fallback_active, "both to report the fallback")
        assert (a.mode, a.degraded) == ("postgres", True)

        own_redis.start()
        await eventually(lambda: fully_connected(a, b), "both buses back on redis")
        assert (a.mode, a.fallback_active, a.degraded) == ("redis", False, False)
        async with aioredis.Redis.from_url(own_redis.url) as raw, raw.pubsub() as spy:
            await spy.subscribe((await a.primary.auth.keys()).changes_channel)
            # The first publish may meet a pooled connection that died with the old server: that one message
            # takes the fallback, and the bus stays on redis (a stale connection is not an outage).
            stale = await store.put("k/stale", b"3")
            await a.publish(stale)
            await eventually(lambda: stale in received.changes(), "b to receive the first change after the restart")
            assert (a.mode, a.fallback_active) == ("redis", False)
            after = await store.put("k/after", b"4")
            await a.publish(after)
            await eventually(lambda: after in received.changes(), "b to receive the second change after the restart")
            await eventually(lambda: seen_on_redis(spy, after.revision), "the second change on redis")
        revisions = [first.revision, during.revision, stale.revision, after.revision]
        assert [c.revision for c in received.changes()] == revisions
    finally:
        await a.aclose()
        await b.aclose()


async def test_waiting_for_an_unreachable_redis_says_so_and_notify_still_carries_changes(
    store: SqlKVStore, own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    own_redis.kill()
    a, b = fallback_bus(store, own_redis.url), fallback_bus(store, own_redis.url)
    received = Inbox()
    await a.start(Inbox())
    await b.start(received)
    try:
        assert not await a.wait_connected(0.3)
        assert any("unreachable" in r.getMessage() and "redis" in r.getMessage() for r in caplog.records)
        await eventually(lambda: not a.fallback.degraded and not b.fallback.degraded, "notify listeners")
        change = await store.put("k/x", b"1")
        await a.publish(change)
        await eventually(lambda: change in received.changes(), "b to receive the change through notify")
    finally:
        await a.aclose()
        await b.aclose()
