"""What the CLI and the server do with events, as library calls: consume, query, stats, the DLQ.

Each opens what it needs from URLs (ACCORD_DB_URL / ACCORD_REDIS_URL by default) and closes it, so
the shells hold no logic. Nothing here needs a running producer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from accord.bus.redis_conn import RedisClient, resolve_redis_url
from accord.core.errors import AccordError, StoreUnavailableError
from accord.events.consumer import Consumer, ConsumerCollector, ConsumerOptions, stream_status
from accord.events.dlq import DeadLetter, list_dead, replay_dead
from accord.events.factory import MigratedEngine
from accord.events.keys import EventKeys
from accord.events.query import EventQuery, run_query, table_stats
from accord.events.redis_stage import redis_client
from accord.store.deployment import redis_keys_of
from accord.store.engine import create_engine, redact, resolve_db_url

__all__ = ["consume", "dead_letters", "event_stats", "query_events", "replay_dead_letters", "stats_on"]


@contextlib.asynccontextmanager
async def _database(db_url: str | None) -> AsyncIterator[MigratedEngine]:
    migrated = MigratedEngine(create_engine(resolve_db_url(db_url)))
    try:
        yield migrated
    finally:
        await migrated.engine.dispose()


@contextlib.asynccontextmanager
async def _redis(redis_url: str | None) -> AsyncIterator[RedisClient]:
    url = resolve_redis_url(redis_url)
    if url is None:
        raise AccordError("the event stream lives in Redis: give --redis-url or set ACCORD_REDIS_URL")
    client = redis_client(url)
    try:
        yield client
    except (RedisError, OSError) as exc:
        raise StoreUnavailableError(f"Redis {redact(url)} is unavailable: {exc}") from exc
    finally:
        await client.aclose()


async def consume(
    db_url: str | None,
    redis_url: str | None,
    options: ConsumerOptions,
    stop: asyncio.Event | None = None,
    *,
    metrics_port: int | None = None,
) -> None:
    """Run one consumer until ``stop`` is set (or the process is stopped); ``metrics_port`` serves /metrics."""
    url = resolve_redis_url(redis_url)
    if url is None:
        raise AccordError("the event stream lives in Redis: give --redis-url or set ACCORD_REDIS_URL")
    async with _database(db_url) as migrated:
        keys = await migrated.keys()
        consumer = Consumer.from_url(url, migrated.engine, keys, options)
        if metrics_port is not None:
            _serve_metrics(consumer, metrics_port)
        try:
            await consumer.run(stop)
        finally:
            await consumer.aclose()


def _serve_metrics(consumer: Consumer, port: int) -> None:
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(ConsumerCollector(consumer))
    start_http_server(port, registry=registry)


async def query_events(db_url: str | None, query: EventQuery) -> list[dict[str, Any]]:
    async with _database(db_url) as migrated:
        return await run_query(await migrated.ready(), query)


async def event_stats(db_url: str | None, redis_url: str | None) -> dict[str, Any]:
    """The table's counts, and the stream's length, lag, pending and DLQ length when Redis is configured."""
    async with _database(db_url) as migrated:
        return await stats_on(await migrated.ready(), redis_url)


async def stats_on(engine: AsyncEngine, redis_url: str | None) -> dict[str, Any]:
    """``event_stats`` on an open engine: what GET /api/events/stats answers, so both ways print the same."""
    stats: dict[str, Any] = await table_stats(engine)
    if resolve_redis_url(redis_url) is not None:
        keys = EventKeys.of(await redis_keys_of(engine))
        async with _redis(redis_url) as client:
            stats["stream"] = asdict(await stream_status(client, keys))
    return stats


async def _keys(db_url: str | None) -> EventKeys:
    async with _database(db_url) as migrated:
        return await migrated.keys()


async def dead_letters(db_url: str | None, redis_url: str | None, limit: int = 100) -> list[DeadLetter]:
    keys = await _keys(db_url)
    async with _redis(redis_url) as client:
        return await list_dead(client, keys, limit=limit)


async def replay_dead_letters(db_url: str | None, redis_url: str | None, ids: list[str] | None = None) -> int:
    keys = await _keys(db_url)
    async with _redis(redis_url) as client:
        return await replay_dead(client, keys, ids)
