"""Redis clients configured the same way everywhere: short timeouts, so an outage is noticed quickly.

``redis_client`` is the one factory: a plain client for ``redis://``, ``rediss://`` and ``unix://``, a
cluster client for ``redis+cluster://`` and ``rediss+cluster://`` (docs/redis-cluster.md).
"""

from __future__ import annotations

from typing import Any, TypeAlias

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ClusterDownError, RedisClusterException, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from accord.bus.redis_url import is_cluster_url, parse_cluster_url, redact_redis, resolve_redis_url, validate_redis_url

__all__ = [
    "REDIS_DOWN_ERRORS",
    "RedisClient",
    "redact_redis",
    "redis_client",
    "resolve_redis_url",
    "validate_redis_url",
]

# On a cluster, a node down (or a slot map not yet refreshed after it) surfaces as the cluster errors too.
REDIS_DOWN_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    ClusterDownError,
    TryAgainError,
    RedisClusterException,
)
RedisClient: TypeAlias = aioredis.Redis | aioredis.RedisCluster


def redis_client(url: str, *, socket_timeout: float | None = 2.0, **options: Any) -> RedisClient:
    """A client for ``url``; ``options`` go to redis-py (both client kinds take the connection options)."""
    validate_redis_url(url)
    settings: dict[str, Any] = {
        "socket_connect_timeout": 1.0,
        "socket_timeout": socket_timeout,
        "health_check_interval": 5,
        "decode_responses": False,
        # No silent reconnect-and-retry inside redis-py: accord must see an outage to resync after it.
        "retry": Retry(NoBackoff(), 0),
        **options,
    }
    if not is_cluster_url(url):
        return aioredis.Redis.from_url(url, **settings)
    return _cluster_client(url, settings)


def _cluster_client(url: str, settings: dict[str, Any]) -> aioredis.RedisCluster:
    parsed = parse_cluster_url(url)
    connection: dict[str, Any] = dict(parse_url(parsed.first_node_url))
    for taken in ("host", "port", "db", "connection_class"):
        connection.pop(taken, None)
    if parsed.first_node_url.startswith("rediss://"):
        connection["ssl"] = True
    return aioredis.RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in parsed.nodes],
        # A node down at start (or for good) must not stop the client: its slots fail, the others serve.
        require_full_coverage=False,
        **{**settings, **connection},
    )
