"""The trim hazard (anchors §2.4): entries removed from the stream before the group read them are added again."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from accord.core.errors import AccordError
from accord.events import PipelineOptions, SamplingPolicy, start
from accord.events.consumer import Consumer
from tests.events.conftest import FAST_CONSUMER, consume_until, seqs_by_producer

OPTIONS = PipelineOptions(confirm_interval_s=0.1, stream_maxlen=10_000, unconfirmed_max=300)


async def test_trimmed_unread_entries_are_added_again(
    redis_url: str, sqlite_url: str, tmp_path: Path, engine_for
) -> None:
    engine, keys = await engine_for(sqlite_url)
    pipeline = await start("svc", sqlite_url, redis_url, tmp_path / "spool", policy=SamplingPolicy.of(sample_rate=1.0),
                           options=OPTIONS)  # fmt: skip
    client = aioredis.Redis.from_url(redis_url)
    try:
        for i in range(1000):
            pipeline.emit({"route": "/t", "status": 200, "i": i})
        assert await pipeline.flush()
        stats = pipeline.stats()
        # no consumer yet: one batch of 500 went to Redis, then unconfirmed_max made the database stage take over
        assert (stats.delivered["redis"], stats.delivered["database"]) == (500, 500)
        await client.xtrim(keys.stream, maxlen=0)  # what MAXLEN trimming does to unread entries
        consumer = Consumer(client, engine, keys, FAST_CONSUMER)

        async def all_in() -> bool:
            return sum(len(s) for s in (await seqs_by_producer(engine)).values()) == 1000

        await consume_until(consumer, all_in)
        assert pipeline.stats().redelivered >= 500
    finally:
        await client.aclose()
        await pipeline.aclose()
    [seqs] = (await seqs_by_producer(engine)).values()
    assert seqs == list(range(1, 1001))


def test_options_that_would_trim_what_is_kept_are_refused() -> None:
    with pytest.raises(AccordError, match="unconfirmed_max"):
        PipelineOptions(stream_maxlen=1000, unconfirmed_max=1000)
