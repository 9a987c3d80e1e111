"""The cache port: one Protocol, a memory and a Redis adapter, chosen from configuration (docs/cache.md).

cache = await accord.cache.open_cache(backend="redis", redis_url=..., namespace="sessions")
await cache.set("session:42", {"user": "ana"}, ttl_s=3600)
await cache.get("session:42")
"""

from __future__ import annotations

from accord.cache.adapters import FallbackCache, MemoryCache, RedisCache
from accord.cache.factory import CacheSettings, open_cache
from accord.cache.port import Cache, JsonValue

__all__ = ["Cache", "CacheSettings", "FallbackCache", "JsonValue", "MemoryCache", "RedisCache", "open_cache"]
