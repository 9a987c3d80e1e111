"""One contract for every cache adapter (memory, Redis, Redis with a memory fallback), plus Redis outages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from accord.cache import Cache, FallbackCache, MemoryCache, RedisCache, open_cache
from accord.core.errors import AccordError, CacheUnavailableError
from accord.store.kv import SqlKVStore
from tests.harness.redis_server import RedisServer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis", "fallback"])
async def cache(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Cache]:
    made: Cache
    if request.param == "memory":
        made = MemoryCache()
    elif request.param == "redis":
        made = await open_cache(backend="redis", redis_url=redis_url, deployment_id="t1")
    else:
        made = await open_cache(backend="redis", on_redis_error="memory", redis_url=redis_url, deployment_id="t1")
    yield made
    await made.aclose()


async def test_set_get_overwrite_delete(cache: Cache) -> None:
    assert await cache.get("missing") is None
    await cache.set("k", {"user": "ana", "roles": ["a", "b"], "n": 3})
    assert await cache.get("k") == {"user": "ana", "roles": ["a", "b"], "n": 3}
    await cache.set("k", [1, 2])
    assert await cache.get("k") == [1, 2]
    assert await cache.delete("k") is True
    assert await cache.delete("k") is False
    assert await cache.get("k") is None


async def test_a_value_expires_after_its_ttl(cache: Cache) -> None:
    await cache.set("short", "v", ttl_s=0.05)
    await cache.set("long", "w", ttl_s=3600)

    async def gone() -> None:
        while await cache.get("short") is not None:  # noqa: ASYNC110 - expiry has no event
            await asyncio.sleep(0.02)

    async with asyncio.timeout(10):
        await gone()
    assert await cache.get("long") == "w"


async def test_bad_input_is_refused_and_nothing_is_written(cache: Cache) -> None:
    with pytest.raises(AccordError, match="JSON"):
        await cache.set("k", {"x": object()})  # type: ignore[dict-item]
    with pytest.raises(AccordError, match="ttl"):
        await cache.set("k", 1, ttl_s=0)
    assert await cache.get("k") is None


async def test_memory_ttl_with_an_injected_clock() -> None:
    clock = Clock()
    cache = MemoryCache(clock=clock, max_entries=2)
    await cache.set("a", 1, ttl_s=10)
    clock.now += 9.9
    assert await cache.get("a") == 1
    clock.now += 0.2
    assert await cache.get("a") is None
    for key in ("x", "y", "z"):
        await cache.set(key, key)
    assert await cache.get("x") is None and await cache.get("z") == "z"  # bounded: the oldest write went


async def test_redis_keys_carry_the_deployment_namespace(sqlite_url: str, redis_url: str) -> None:
    store = await SqlKVStore.from_url(sqlite_url)
    deployment = (await store.deployment()).id
    cache = await open_cache(backend="redis", redis_url=redis_url, db_url=sqlite_url, namespace="sessions")
    try:
        assert isinstance(cache, RedisCache)
        assert cache.prefix == f"accord:{deployment}:cache:app:sessions:"
    finally:
        await cache.aclose()
        await store.aclose()


async def test_redis_down_is_a_clear_error_not_a_hang(own_redis: RedisServer) -> None:
    cache = await open_cache(backend="redis", redis_url=own_redis.url, deployment_id="t1", timeout_ms=200)
    try:
        await cache.set("k", 1)
        await asyncio.to_thread(own_redis.kill)
        async with asyncio.timeout(10):  # a bound on the test, not a measured figure
            with pytest.raises(CacheUnavailableError, match="did not answer") as caught:
                await cache.get("k")
        assert own_redis.url.split("@")[-1].split("/")[0] in caught.value.detail
    finally:
        await cache.aclose()


async def test_redis_down_with_the_memory_fallback_keeps_working(own_redis: RedisServer) -> None:
    cache = await open_cache(
        backend="redis", on_redis_error="memory", redis_url=own_redis.url, deployment_id="t1", timeout_ms=200
    )
    assert isinstance(cache, FallbackCache)
    try:
        await cache.set("shared", "from-redis")
        await asyncio.to_thread(own_redis.kill)
        async with asyncio.timeout(10):
            assert await cache.get("shared") is None  # Redis's values are out of reach; no error
            await cache.set("local", {"v": 1})
            assert await cache.get("local") == {"v": 1}
        assert cache.degraded and cache.fallbacks == 1
    finally:
        await cache.aclose()


async def test_the_backend_comes_from_the_cache_settings(sqlite_url: str, redis_url: str) -> None:
    import accord
    from accord.cache import CacheSettings

    live = await accord.connect(sqlite_url, None, groups=[CacheSettings], watch=False)
    try:
        assert isinstance(await open_cache(config=live), MemoryCache)
        await live.set("cache.backend", "redis")
        made = await open_cache(config=live, redis_url=redis_url, db_url=sqlite_url)
        assert isinstance(made, RedisCache)
        await made.aclose()
        with pytest.raises(AccordError, match=r"cache\.backend"):
            await live.set("cache.backend", "memcached")
    finally:
        await live.aclose()
