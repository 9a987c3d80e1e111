"""Choosing the adapter from configuration: the seed's SESSION_CACHE_TYPE, as typed settings ``cache.*``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from accord.bus.redis_url import resolve_redis_url
from accord.cache.adapters import FallbackCache, MemoryCache, RedisCache
from accord.cache.port import Cache
from accord.config.settings import Setting, SettingsGroup
from accord.core.errors import AccordError
from accord.core.redis_keys import RedisKeys
from accord.store.deployment import redis_keys_of
from accord.store.engine import create_engine, resolve_db_url

if TYPE_CHECKING:
    from accord.config.live import LiveConfig

__all__ = ["CacheSettings", "open_cache"]

Backend = Literal["memory", "redis"]
OnError = Literal["error", "memory"]


class CacheSettings(SettingsGroup, category="cache"):
    """Declare with ``accord.connect(groups=[CacheSettings, ...])`` and pass the LiveConfig to ``open_cache``."""

    backend: Backend = Setting("memory", env="ACCORD_CACHE_BACKEND", description="memory (per process) or redis.")
    on_redis_error: OnError = Setting(
        "error", description="When Redis does not answer: error (CacheUnavailableError) or memory (per process)."
    )
    timeout_ms: int = Setting(500, ge=10, le=60_000, description="Per-command Redis timeout.")


async def open_cache(
    *,
    backend: Backend | None = None,
    on_redis_error: OnError | None = None,
    redis_url: str | None = None,
    namespace: str = "app",
    deployment_id: str | None = None,
    db_url: str | None = None,
    config: LiveConfig | None = None,
    timeout_ms: int | None = None,
) -> Cache:
    """The cache the configuration names (explicit arguments win over ``config``'s ``cache.*``).

    Redis keys are ``accord:<deployment>:cache:app:<namespace>:<key>``; the deployment id is read from
    the database (``db_url``, else ACCORD_DB_URL) unless ``deployment_id`` is given.
    """
    chosen: str = backend or (config.get("cache.backend") if config is not None else "memory")
    on_error: str = on_redis_error or (config.get("cache.on_redis_error") if config is not None else "error")
    timeout = timeout_ms or (int(config.get("cache.timeout_ms")) if config is not None else 500)
    if chosen == "memory":
        return MemoryCache()
    if chosen != "redis":
        raise AccordError(f"cache backend must be memory or redis, got {chosen!r}")
    url = resolve_redis_url(redis_url)
    if url is None:
        raise AccordError("cache backend redis needs a Redis URL: give redis_url or set ACCORD_REDIS_URL")
    prefix = f"{(await _base(deployment_id, db_url))}cache:app:{namespace}:"
    redis_cache = RedisCache(url, prefix, timeout_s=timeout / 1000)
    if on_error == "memory":
        return FallbackCache(redis_cache, MemoryCache())
    return redis_cache


async def _base(deployment_id: str | None, db_url: str | None) -> str:
    if deployment_id is not None:
        return RedisKeys(deployment_id).base
    engine = create_engine(resolve_db_url(db_url))
    try:
        return (await redis_keys_of(engine)).base
    finally:
        await engine.dispose()
