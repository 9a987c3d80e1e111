"""The one place that decides which bus and value cache a process uses.

The Redis and PostgreSQL buses are imported only when chosen: redis-py and asyncpg cost a CLI call on
SQLite ~0.2 s of imports it never uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from accord.bus.auth import BusAuth
from accord.bus.composite import FallbackChangeBus
from accord.bus.local_bus import DEFAULT_POLL_INTERVAL_S, LocalChangeBus
from accord.bus.types import ChangeBus
from accord.bus.value_cache import NullValueCache, ValueCache
from accord.store.types import KVStore


@dataclass(frozen=True)
class Propagation:
    """How a replica hears about changes and announces its own: a bus, and a cache of current values."""

    bus: ChangeBus
    cache: ValueCache
    auth: BusAuth

    async def aclose(self) -> None:
        await self.bus.aclose()


def build_propagation(
    store: KVStore, redis_url: str | None, *, poll_interval: float = DEFAULT_POLL_INTERVAL_S
) -> Propagation:
    """Redis pub/sub and cache when a Redis URL is given, over a fallback of NOTIFY (PostgreSQL) or polling (SQLite)."""
    auth = BusAuth(store)
    fallback = _database_bus(store, auth, poll_interval)
    if not redis_url:
        return Propagation(bus=fallback, cache=NullValueCache(), auth=auth)
    from accord.bus.redis_bus import RedisChangeBus
    from accord.bus.redis_cache import RedisValueCache

    redis_bus = RedisChangeBus(redis_url, auth)
    cache = RedisValueCache(redis_bus.client, auth)
    return Propagation(bus=FallbackChangeBus(redis_bus, fallback), cache=cache, auth=auth)


def _database_bus(store: KVStore, auth: BusAuth, poll_interval: float) -> ChangeBus:
    dsn = store.listen_dsn()
    if dsn is not None:
        from accord.bus.pg_bus import PgNotifyBus

        return PgNotifyBus(dsn, display_url=store.url, auth=auth)
    return LocalChangeBus(store, store_id=store.identity, poll_interval=poll_interval)
