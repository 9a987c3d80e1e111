"""A producer's readiness (``pipeline.health()`` and ``readiness_endpoint``) through a real Redis outage.

redis-server is killed for real: the producer moves to the spool (degraded, still ready: nothing is
lost), is not ready once the spool nears its cap (the next appends would shed events), and is ready
and on Redis again after the restart, when the spool has replayed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from starlette.applications import Starlette

from accord.events import PipelineOptions, SamplingPolicy, readiness_endpoint, start
from accord.events.pipeline import Pipeline
from tests.events.conftest import wait_for
from tests.harness.redis_server import RedisServer

OPTIONS = PipelineOptions(
    flush_interval_s=0.01,
    confirm_interval_s=0.2,
    spool_max_bytes=64 * 1024,
    spool_segment_bytes=8 * 1024,
    spool_fsync="never",
    loss_window_s=1.0,
)


async def _probe(client: httpx.AsyncClient) -> tuple[int, dict]:  # type: ignore[type-arg]
    response = await client.get("/readyz")
    return response.status_code, response.json()["dependencies"]["events"]


async def _until_stage(pipeline: Pipeline, stage: str) -> None:
    async def there() -> bool:
        pipeline.emit({"route": "/probe", "status": 200})
        return pipeline.health()[0]["stage"] == stage

    await wait_for(there, within=30, what=f"the producer's stage to be {stage}")


async def test_readiness_follows_a_real_redis_outage(own_redis: RedisServer, sqlite_url: str, tmp_path: Path) -> None:
    pipeline = await start(
        "svc", sqlite_url, own_redis.url, tmp_path / "spool", policy=SamplingPolicy.of(sample_rate=1.0),
        options=OPTIONS, database_stage=False,
    )  # fmt: skip
    app = Starlette()
    app.add_route("/readyz", readiness_endpoint(pipeline))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app")
    try:
        await _until_stage(pipeline, "redis")
        status, answer = await _probe(client)
        assert status == 200 and answer["ok"] and not answer["degraded"]
        assert answer["breakers"] == {"redis": {"state": "closed", "failures": 0}}
        assert answer["buffer"]["capacity"] == OPTIONS.buffer_events and answer["dropped"] == 0

        await asyncio.to_thread(own_redis.kill)
        await _until_stage(pipeline, "spool")
        status, answer = await _probe(client)
        assert status == 200, answer  # on the spool nothing is lost: degraded, still ready
        assert answer["degraded"] and not answer["ok"]
        assert answer["breakers"]["redis"]["state"] in {"open", "half-open"}
        assert answer["breakers"]["redis"]["failures"] >= 1

        async def shedding() -> bool:  # normal events past the cap are shed from the oldest segments
            for n in range(50):
                pipeline.emit({"route": "/fill", "status": 200, "pad": "x" * 400, "n": n})
            return pipeline.health()[0]["dropped"] > 0

        await wait_for(shedding, within=30, what="the spool cap to shed normal events")
        status, answer = await _probe(client)
        assert status == 503 and "shed" in answer["error"], answer

        async def nearly_full() -> bool:  # error events are not shed from a segment: the spool fills up
            for n in range(50):
                pipeline.emit({"route": "/fill", "status": 500, "pad": "x" * 400, "n": n})
            return pipeline.health()[0]["spool"]["fill"] >= 0.9

        await wait_for(nearly_full, within=30, what="the spool to reach 90 % of its cap")
        status, answer = await _probe(client)
        assert status == 503 and "of its cap" in answer["error"], answer

        await asyncio.to_thread(own_redis.start)

        async def recovered() -> bool:
            answer, ready = pipeline.health()
            return ready and answer["ok"] and answer["spool"]["bytes"] == 0

        await wait_for(recovered, within=60, what="the spool to replay into the restarted Redis")
        status, answer = await _probe(client)
        assert status == 200 and answer["stage"] == "redis" and answer["ok"]
        assert answer["breakers"]["redis"]["state"] == "closed"
    finally:
        await client.aclose()
        await pipeline.aclose()
    answer, ready = pipeline.health()
    assert not ready and "not running" in answer["error"]  # a closed pipeline delivers nothing any more


async def test_a_full_buffer_is_not_ready_and_application_checks_are_merged(tmp_path: Path) -> None:
    """Without a batcher (never started) nothing leaves the buffer; the probe says why, with the app's own checks."""
    pipeline = Pipeline(
        "svc", policy=SamplingPolicy.of(sample_rate=1.0), spool_dir=tmp_path / "spool",
        options=PipelineOptions(buffer_events=10),
    )  # fmt: skip

    async def cache() -> tuple[dict[str, object], bool]:
        return {"ok": True}, True

    app = Starlette()
    app.add_route("/readyz", readiness_endpoint(pipeline, {"cache": cache}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
        for n in range(10):
            pipeline.emit({"n": n, "status": 200})
        response = await client.get("/readyz")
    body = response.json()
    assert response.status_code == 503 and body["ready"] is False
    assert body["dependencies"]["cache"] == {"ok": True}
    events = body["dependencies"]["events"]
    assert "not running" in events["error"] and "buffer is 100% full" in events["error"]
    assert events["stage"] == "spool" and events["buffer"] == {"events": 10, "capacity": 10, "fill": 1.0}
