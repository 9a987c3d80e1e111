"""WideEventMiddleware on a real uvicorn server over TCP: one event per request, with handler fields."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from accord.events import Pipeline, SamplingPolicy, WideEventMiddleware, current
from accord.events.pipeline import PipelineOptions
from tests.harness import free_port

POLICY = SamplingPolicy.of(critical_routes=["/pay/{order}"], slow_ms=10_000, sample_rate=0.0)


def _app(pipeline: Pipeline) -> WideEventMiddleware:
    app = FastAPI()

    @app.get("/items/{item}")
    async def item(item: str) -> dict[str, str]:
        current()["item"] = item
        return {"item": item}

    @app.post("/pay/{order}")
    async def pay(order: str) -> dict[str, str]:
        current()["order"] = order
        pipeline.emit({"step": "charged", "amount_cents": 1200})
        return {"ok": order}

    @app.get("/boom")
    async def boom() -> None:
        raise LookupError("no such thing")

    @app.get("/sync")
    def sync_handler() -> dict[str, bool]:  # runs in a worker thread: the contextvar must follow it
        current()["in_thread"] = True
        return {"ok": True}

    return WideEventMiddleware(app, pipeline=pipeline)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Pipeline, httpx.AsyncClient]]:
    pipeline = Pipeline("web", policy=POLICY, spool_dir=tmp_path / "spool", options=PipelineOptions())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_app(pipeline), port=port, log_level="error", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        yield pipeline, client
    server.should_exit = True
    await task


def _events(pipeline: Pipeline) -> list[dict[str, object]]:
    return pipeline._buffer.take(1000)


async def test_a_request_becomes_one_event_with_the_route_template(served) -> None:  # type: ignore[no-untyped-def]
    pipeline, client = served
    pipeline.set_policy(SamplingPolicy.of(sample_rate=1.0))
    answer = await client.get("/items/42", headers={"X-Request-ID": "abc-123"})
    assert answer.headers["x-request-id"] == "abc-123"
    [event] = _events(pipeline)
    assert event["request_id"] == "abc-123" and event["route"] == "/items/{item}" and event["item"] == "42"
    assert event["method"] == "GET" and event["status"] == 200 and event["error_type"] is None
    assert isinstance(event["duration_ms"], float) and event["service"] == "web"
    assert event["sampling_rule"] == "sampled" and event["sample_rate"] == 1.0


async def test_errors_and_critical_routes_are_kept_and_the_rest_dropped(served) -> None:  # type: ignore[no-untyped-def]
    pipeline, client = served
    assert (await client.get("/items/1")).status_code == 200
    assert (await client.get("/boom")).status_code == 500
    assert (await client.post("/pay/o-9")).status_code == 200
    events = _events(pipeline)
    by_rule = {e["sampling_rule"]: e for e in events}
    assert set(by_rule) == {"error", "critical"}
    assert by_rule["error"]["error_type"] == "LookupError" and by_rule["error"]["status"] == 500
    extra = [e for e in events if e.get("step") == "charged"]
    assert len(extra) == 1 and extra[0]["sampling_rule"] == "critical"
    assert extra[0]["request_id"] == by_rule["critical"]["request_id"]
    assert pipeline.stats().sampled_out == 1


async def test_a_bad_request_id_is_replaced_and_sync_handlers_see_current(served) -> None:  # type: ignore[no-untyped-def]
    pipeline, client = served
    pipeline.set_policy(SamplingPolicy.of(sample_rate=1.0))
    answer = await client.get("/sync", headers={"X-Request-ID": "x" * 200})
    [event] = _events(pipeline)
    assert event["in_thread"] is True
    assert len(str(event["request_id"])) == 32 and answer.headers["x-request-id"] == event["request_id"]
