"""Zero loss through a real broker outage: redis-server killed and restarted empty while a producer runs.

At the issue's scale: 2,000 events/s for 30 s (60,000 events), redis-server killed 5 s in and
restarted empty 10 s later; the kill and the empty restart are real. Two paths: with the database
stage (events go straight to PostgreSQL while Redis is down) and without it (events go to the spool
and replay, on SQLite, in order).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from accord.events import PipelineOptions, SamplingPolicy, start
from accord.events.consumer import Consumer
from tests.events.conftest import FAST_CONSUMER, seqs_by_producer, wait_for
from tests.harness.redis_server import RedisServer

RATE = 2000  # events per second (emitted on schedule: a late loop catches up, so `sent` is RATE * SECONDS)
SECONDS = 30.0
OUTAGE_AT, OUTAGE_S = 5.0, 10.0
OPTIONS = PipelineOptions(confirm_interval_s=0.2, flush_interval_s=0.01)


async def _produce(pipeline, seconds: float) -> int:  # type: ignore[no-untyped-def]
    sent = 0
    loop = asyncio.get_running_loop()
    began = loop.time()
    while (elapsed := loop.time() - began) < seconds:
        due = int(elapsed * RATE)
        while sent < due:
            sent += 1
            assert pipeline.emit({"route": "/load", "status": 200, "n": sent})
        await asyncio.sleep(0.005)
    return sent


async def _outage(redis: RedisServer) -> None:
    await asyncio.sleep(OUTAGE_AT)
    await asyncio.to_thread(redis.kill)
    await asyncio.sleep(OUTAGE_S)
    await asyncio.to_thread(redis.start)  # empty: the harness's Redis persists nothing


async def _consume_after_the_outage(consumer: Consumer, stop: asyncio.Event) -> None:
    """The consumer is down until the outage is over, so what was in the stream when Redis died was unconsumed."""
    await asyncio.sleep(OUTAGE_AT + OUTAGE_S + 0.5)
    await consumer.run(stop)


async def _run(url: str, redis: RedisServer, spool: Path, engine_for, *, database_stage: bool) -> tuple:  # type: ignore[no-untyped-def]
    engine, keys = await engine_for(url)
    pipeline = await start(
        "load", url, redis.url, spool, policy=SamplingPolicy.of(sample_rate=1.0), options=OPTIONS,
        database_stage=database_stage,
    )  # fmt: skip
    consumer = Consumer.from_url(redis.url, engine, keys, FAST_CONSUMER)
    stop = asyncio.Event()
    consuming = asyncio.create_task(_consume_after_the_outage(consumer, stop))
    try:
        sent, _ = await asyncio.gather(_produce(pipeline, SECONDS), _outage(redis))
        assert sent >= RATE * (SECONDS - 0.1), f"only {sent} events emitted"

        async def all_arrived() -> bool:
            async with engine.connect() as conn:
                return (await conn.scalar(sa.text("SELECT count(*) FROM accord_event"))) == sent

        await wait_for(all_arrived, within=60, what=f"{sent} events in the table")
        return sent, pipeline.stats(), engine
    finally:
        stop.set()
        await consuming
        await consumer.aclose()
        await pipeline.aclose()


async def test_redis_killed_events_go_to_the_database_and_none_is_lost(
    own_redis: RedisServer, pg_url: str, tmp_path: Path, engine_for
) -> None:
    sent, stats, engine = await _run(pg_url, own_redis, tmp_path / "spool", engine_for, database_stage=True)
    seqs = await seqs_by_producer(engine)
    assert len(seqs) == 1
    assert next(iter(seqs.values())) == list(range(1, sent + 1))  # each exactly once (event_id is the key)
    assert stats.delivered.get("database", 0) > 0  # the outage was real: the database stage took batches
    assert stats.delivered.get("spool", 0) == 0
    assert stats.redelivered > 0  # what the empty Redis lost was added again from the producer's memory


async def test_redis_killed_without_a_database_stage_the_spool_replays_in_order(
    own_redis: RedisServer, sqlite_url: str, tmp_path: Path, engine_for
) -> None:
    sent, stats, engine = await _run(sqlite_url, own_redis, tmp_path / "spool", engine_for, database_stage=False)
    async with engine.connect() as conn:
        arrival = [row[0] for row in await conn.execute(sa.text("SELECT seq FROM accord_event ORDER BY rowid"))]
    assert sorted(arrival) == list(range(1, sent + 1))
    assert arrival == sorted(arrival)  # in order per producer, replay included
    assert stats.spooled > 0 and stats.replayed == stats.spooled
    assert stats.redelivered > 0
