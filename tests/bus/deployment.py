"""The Redis namespace of a test's database, for tests that look at Redis directly."""

from __future__ import annotations

from accord.core.redis_keys import RedisKeys
from accord.store.kv import SqlKVStore
from accord.store.types import KVStore


async def redis_keys(store: KVStore) -> RedisKeys:
    return RedisKeys((await store.deployment()).id)


async def redis_keys_at(db_url: str) -> RedisKeys:
    async with await SqlKVStore.from_url(db_url) as store:
        return await redis_keys(store)
