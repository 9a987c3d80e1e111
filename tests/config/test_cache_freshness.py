"""The Redis value cache catches up with writers that never talk to Redis (a CLI, a process whose Redis is down)."""

from __future__ import annotations

import redis.asyncio as aioredis

import accord
from accord.core.redis_keys import CACHE_REVISION, CACHE_VALUES
from accord.store.entry_codec import decode_entry
from accord.store.kv import SqlKVStore
from tests.config.procs_worker import Knobs, eventually


async def test_cache_rebuilt_after_a_write_that_bypassed_redis(pg_url: str, redis_url: str) -> None:
    async with await accord.connect(pg_url, redis_url, groups=[Knobs], check_interval=0.2) as cfg:
        await cfg.set("knobs.level", 1)
        client = aioredis.Redis.from_url(redis_url)
        try:
            await eventually(lambda: _marker_at(client, cfg.last_revision), "the cache marker to reach the first write")
            async with await SqlKVStore.from_url(pg_url) as raw:
                silent = await raw.put("config/knobs/level", b"7", actor="no-redis-writer")
            await cfg.set("knobs.name", "after")  # a Redis-aware write moves the marker past the silent one
            await eventually(lambda: cfg.knobs.level == 7, "the periodic check to pick up the silent write")
            await eventually(
                lambda: _cached_value(client, "config/knobs/level", silent.revision),
                "the cache to be rebuilt with the write that bypassed Redis",
            )
        finally:
            await client.aclose()


async def _marker_at(client: aioredis.Redis, revision: int) -> bool:
    marker = await client.get(CACHE_REVISION)
    return marker is not None and int(marker) >= revision


async def _cached_value(client: aioredis.Redis, key: str, revision: int) -> bool:
    raw = await client.hget(CACHE_VALUES, key)
    return raw is not None and decode_entry(raw).mod_revision == revision and decode_entry(raw).value == b"7"
