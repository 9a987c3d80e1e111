"""The adapters: ``MemoryCache`` (per process), ``RedisCache`` (shared), ``FallbackCache`` (Redis, else memory).

``RedisCache`` never hangs: every command has a socket timeout, and a Redis that does not answer
becomes ``CacheUnavailableError`` naming it. ``FallbackCache`` turns that into reads and writes on a
per-process memory cache (logged once per outage) and tries Redis again after a backoff.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

import orjson
from redis.exceptions import RedisError

from accord.bus.redis_conn import redis_client
from accord.cache.port import JsonValue
from accord.core.errors import AccordError, CacheUnavailableError
from accord.store.engine import redact

__all__ = ["FallbackCache", "MemoryCache", "RedisCache"]

log = logging.getLogger("accord.cache")
MAX_KEY_CHARS = 512


def _check(key: str, ttl_s: float | None = None) -> None:
    if not key or len(key) > MAX_KEY_CHARS:
        raise AccordError(f"cache keys are 1-{MAX_KEY_CHARS} characters, got {len(key)}")
    if ttl_s is not None and not ttl_s > 0:
        raise AccordError(f"a cache ttl must be > 0 seconds (None: no expiry), got {ttl_s!r}")


def _encode(value: JsonValue) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise AccordError(f"cache values must be JSON: {exc}") from None


class MemoryCache:
    """A dict with deadlines, bounded to ``max_entries`` (the least recently written goes first).

    Not shared between processes or workers: each has its own.
    """

    def __init__(self, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    async def get(self, key: str) -> JsonValue:
        _check(key)
        found = self._data.get(key)
        if found is None:
            return None
        data, deadline = found
        if deadline is not None and self._clock() >= deadline:
            del self._data[key]
            return None
        value: JsonValue = orjson.loads(data)
        return value

    async def set(self, key: str, value: JsonValue, *, ttl_s: float | None = None) -> None:
        _check(key, ttl_s)
        data = _encode(value)  # a copy: a caller mutating its dict afterwards does not change the cache
        self._data.pop(key, None)
        self._data[key] = (data, None if ttl_s is None else self._clock() + ttl_s)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    async def delete(self, key: str) -> bool:
        _check(key)
        return self._data.pop(key, None) is not None

    async def aclose(self) -> None:
        self._data.clear()


class RedisCache:
    """Values as JSON under ``<prefix><key>``; ``SET ... PX`` for a TTL."""

    def __init__(self, url: str, prefix: str, *, timeout_s: float = 0.5) -> None:
        self._url = url
        self.prefix = prefix
        # The one client factory, so a redis+cluster:// URL works here too (docs/redis-cluster.md).
        self._client = redis_client(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)

    async def get(self, key: str) -> JsonValue:
        _check(key)
        try:
            data = await self._client.get(self.prefix + key)
        except (RedisError, OSError) as exc:
            raise self._down(exc) from exc
        if data is None:
            return None
        value: JsonValue = orjson.loads(data)
        return value

    async def set(self, key: str, value: JsonValue, *, ttl_s: float | None = None) -> None:
        _check(key, ttl_s)
        data = _encode(value)
        px = None if ttl_s is None else max(1, int(ttl_s * 1000))
        try:
            await self._client.set(self.prefix + key, data, px=px)
        except (RedisError, OSError) as exc:
            raise self._down(exc) from exc

    async def delete(self, key: str) -> bool:
        _check(key)
        try:
            return bool(await self._client.delete(self.prefix + key))
        except (RedisError, OSError) as exc:
            raise self._down(exc) from exc

    async def aclose(self) -> None:
        await self._client.aclose()

    def _down(self, exc: BaseException) -> CacheUnavailableError:
        return CacheUnavailableError(f"the cache's Redis {redact(self._url)} did not answer: {exc}")


class FallbackCache:
    """Redis while it answers; a per-process ``MemoryCache`` while it does not (values written then stay local)."""

    def __init__(self, primary: RedisCache, fallback: MemoryCache, *, retry_after_s: float = 5.0) -> None:
        self.primary = primary
        self.fallback = fallback
        self._retry_after = retry_after_s
        self._down_until = 0.0
        self.fallbacks = 0

    @property
    def degraded(self) -> bool:
        return time.monotonic() < self._down_until

    async def get(self, key: str) -> JsonValue:
        if not self.degraded:
            try:
                return await self.primary.get(key)
            except CacheUnavailableError as exc:
                self._went_down(exc)
        return await self.fallback.get(key)

    async def set(self, key: str, value: JsonValue, *, ttl_s: float | None = None) -> None:
        if not self.degraded:
            try:
                await self.primary.set(key, value, ttl_s=ttl_s)
                return
            except CacheUnavailableError as exc:
                self._went_down(exc)
        await self.fallback.set(key, value, ttl_s=ttl_s)

    async def delete(self, key: str) -> bool:
        local = await self.fallback.delete(key)
        if not self.degraded:
            try:
                return await self.primary.delete(key) or local
            except CacheUnavailableError as exc:
                self._went_down(exc)
        return local

    async def aclose(self) -> None:
        await self.primary.aclose()
        await self.fallback.aclose()

    def _went_down(self, exc: CacheUnavailableError) -> None:
        self.fallbacks += 1
        log.warning("cache: %s; using the per-process memory cache for %.0fs", exc.detail, self._retry_after)
        self._down_until = time.monotonic() + self._retry_after
