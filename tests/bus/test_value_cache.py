"""The value cache: the null one keeps nothing; the Redis one is complete or absent, and catches up with
writers that never talk to Redis (a CLI, a process whose Redis is down)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

import accord
from accord.bus.auth import BusAuth
from accord.bus.redis_cache import RedisValueCache
from accord.bus.redis_conn import redis_client
from accord.bus.value_cache import NullValueCache, ValueCache
from accord.core.redis_keys import RedisKeys
from accord.store.entry_codec import decode_entry
from accord.store.kv import SqlKVStore
from accord.store.types import Entry
from tests.config.procs_worker import Knobs, eventually
from tests.harness import RedisServer


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[SqlKVStore]:
    async with await SqlKVStore.from_url(sqlite_url) as opened:
        yield opened


def as_rows(entries: list[Entry]) -> dict[str, tuple[bytes, int, int]]:
    return {e.key: (e.value, e.version, e.mod_revision) for e in entries}


async def test_the_null_cache_keeps_nothing(store: SqlKVStore) -> None:
    cache: ValueCache = NullValueCache()
    change = await store.put("k/a", b"1")
    await cache.apply(change, await store.get("k/a"))
    await cache.refresh(store, change.revision)
    assert await cache.load() is None


async def test_the_redis_cache_is_complete_or_absent_and_follows_changes(store: SqlKVStore, redis_url: str) -> None:
    client = redis_client(redis_url)
    cache: ValueCache = RedisValueCache(client, BusAuth(store))
    try:
        first = await store.put("k/a", b"1")
        await cache.apply(first, await store.get("k/a"))
        assert await cache.load() is None, "no marker yet: a change alone does not make a complete cache"

        await cache.refresh(store, 0)  # the marker is missing: rebuild from the database
        loaded = await cache.load()
        assert loaded is not None and loaded[0] == first.revision
        assert as_rows(loaded[1]) == as_rows((await store.snapshot())[1])

        second = await store.put("k/b", b"2")
        await cache.apply(second, await store.get("k/b"))
        deleted = await store.delete("k/a")
        await cache.apply(deleted, None)
        loaded = await cache.load()
        assert loaded is not None and loaded[0] == deleted.revision
        assert as_rows(loaded[1]) == as_rows((await store.snapshot())[1])
    finally:
        await client.aclose()


async def test_a_redis_cache_that_does_not_answer_has_nothing_to_offer(
    store: SqlKVStore, own_redis: RedisServer
) -> None:
    client = redis_client(own_redis.url)
    cache = RedisValueCache(client, BusAuth(store))
    try:
        await cache.refresh(store, 0)
        assert await cache.load() is not None
        own_redis.kill()
        assert await cache.load() is None
        change = await store.put("k/a", b"1")
        await cache.apply(change, await store.get("k/a"))  # best effort: no error escapes
        await cache.refresh(store, change.revision)
    finally:
        await client.aclose()


async def test_cache_rebuilt_after_a_write_that_bypassed_redis(pg_url: str, redis_url: str) -> None:
    async with await accord.connect(pg_url, redis_url, groups=[Knobs], check_interval=0.2) as cfg:
        await cfg.set("knobs.level", 1)
        client = aioredis.Redis.from_url(redis_url)
        try:
            keys = RedisKeys((await cfg.store.deployment()).id)
            await eventually(lambda: _marker_at(client, keys, cfg.last_revision), "the cache marker to reach the write")
            async with await SqlKVStore.from_url(pg_url) as raw:
                silent = await raw.put("config/knobs/level", b"7", actor="no-redis-writer")
            await cfg.set("knobs.name", "after")  # a Redis-aware write moves the marker past the silent one
            await eventually(lambda: cfg.knobs.level == 7, "the periodic check to pick up the silent write")
            await eventually(
                lambda: _cached_value(client, keys, "config/knobs/level", silent.revision),
                "the cache to be rebuilt with the write that bypassed Redis",
            )
        finally:
            await client.aclose()


async def _marker_at(client: aioredis.Redis, keys: RedisKeys, revision: int) -> bool:
    marker = await client.get(keys.cache_revision)
    return marker is not None and int(marker) >= revision


async def _cached_value(client: aioredis.Redis, keys: RedisKeys, key: str, revision: int) -> bool:
    raw = await client.hget(keys.cache_values, key)
    return raw is not None and decode_entry(raw).mod_revision == revision and decode_entry(raw).value == b"7"
