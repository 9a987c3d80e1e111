"""Redis clients configured the same way everywhere: short timeouts, so an outage is noticed quickly."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from accord.core import environ

REDIS_DOWN_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)


def resolve_redis_url(url: str | None) -> str | None:
    """An explicit URL, else ``ACCORD_REDIS_URL``; an empty string means "no Redis"."""
    if url is not None:
        return url or None
    return environ.current().redis_url


def redis_client(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        health_check_interval=5,
        decode_responses=False,
        # No silent reconnect-and-retry inside redis-py: accord must see an outage to resync after it.
        retry=Retry(NoBackoff(), 0),
    )


def redact_redis(url: str) -> str:
    """The URL without its password, for logs and errors."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1) if "://" in url else ("redis", url)
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
