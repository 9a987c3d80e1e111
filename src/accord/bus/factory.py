"""The one place that decides which bus and cache a process uses."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from accord.bus.composite import FallbackChangeBus
from accord.bus.local_bus import DEFAULT_POLL_INTERVAL_S, LocalChangeBus
from accord.bus.pg_bus import PgNotifyBus
from accord.bus.redis_bus import RedisChangeBus
from accord.bus.redis_cache import RedisValueCache
from accord.bus.redis_conn import redact_redis
from accord.bus.types import ChangeBus
from accord.store.kv import SqlKVStore

log = logging.getLogger("accord.bus")


@dataclass
class Propagation:
    """What a LiveConfig needs to hear about and announce changes."""

    bus: ChangeBus
    cache: RedisValueCache | None
    redis: RedisChangeBus | None


def build_propagation(
    store: SqlKVStore, redis_url: str | None, *, poll_interval: float = DEFAULT_POLL_INTERVAL_S
) -> Propagation:
    """Redis pub/sub when a Redis URL is given, over a fallback of NOTIFY (PostgreSQL) or polling (SQLite)."""
    fallback = _database_bus(store, poll_interval)
    if not redis_url:
        return Propagation(bus=fallback, cache=None, redis=None)
    redis_bus = RedisChangeBus(redis_url)
    return Propagation(
        bus=FallbackChangeBus(redis_bus, fallback), cache=RedisValueCache(redis_bus.client), redis=redis_bus
    )


async def warn_if_redis_missing(propagation: Propagation, wait_s: float) -> None:
    if propagation.redis and not await propagation.redis.wait_connected(wait_s):
        fallback = propagation.bus.mode
        log.warning(
            "redis %s is unreachable; propagating through %s and reconnecting in the background",
            redact_redis(propagation.redis.url),
            fallback,
        )


def _database_bus(store: SqlKVStore, poll_interval: float) -> ChangeBus:
    if store.dialect == "postgresql":
        dsn = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PgNotifyBus(dsn, display_url=store.url)
    return LocalChangeBus(
        store, store_id=store.engine.url.render_as_string(hide_password=False), poll_interval=poll_interval
    )
