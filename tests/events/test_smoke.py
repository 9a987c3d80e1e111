from __future__ import annotations

from pathlib import Path

from accord.events import SamplingPolicy, start
from accord.events.consumer import Consumer
from tests.events.conftest import FAST_CONSUMER, consume_until, event_ids


async def test_events_reach_the_table_through_redis(
    redis_url: str, sqlite_url: str, tmp_path: Path, engine_for
) -> None:
    engine, keys = await engine_for(sqlite_url)
    pipeline = await start("svc", sqlite_url, redis_url, tmp_path / "spool", policy=SamplingPolicy.of(sample_rate=1.0))
    for i in range(300):
        assert pipeline.emit({"route": "/x", "status": 200, "i": i})
    assert await pipeline.flush()
    assert pipeline.stats().delivered == {"redis": 300}
    consumer = Consumer.from_url(redis_url, engine, keys, FAST_CONSUMER)

    async def all_in() -> bool:
        return len(await event_ids(engine)) == 300

    await consume_until(consumer, all_in)
    await consumer.aclose()
    await pipeline.aclose()


async def test_the_collector_shows_the_active_stage_and_counts(sqlite_url: str, tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    pipeline = await start("svc", sqlite_url, None, tmp_path / "spool", policy=SamplingPolicy.of(sample_rate=0.0))
    try:
        registry = CollectorRegistry()
        registry.register(pipeline.collector())
        pipeline.emit({"status": 500})
        pipeline.emit({"status": 200})
        assert await pipeline.flush()
        text = generate_latest(registry).decode()
    finally:
        await pipeline.aclose()
    assert 'accord_events_active_stage{stage="database"} 1.0' in text
    assert "accord_events_fallback_active 1.0" in text
    assert 'accord_events_kept_total{rule="error"} 1.0' in text
    assert "accord_events_sampled_out_total 1.0" in text
    assert 'accord_events_delivered_total{stage="database"} 1.0' in text
