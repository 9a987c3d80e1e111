"""``accord serve --events``: a real server process runs the events consumer and names its stage in /readyz."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from accord.events import SamplingPolicy, start
from tests.events.conftest import event_ids, wait_for
from tests.harness.accord_server import ACCORD, AccordServer, AccordServers
from tests.harness.http_process import child_env
from tests.harness.redis_server import RedisServer


def readiness(server: AccordServer) -> tuple[int, dict[str, Any]]:
    with server.client() as client:
        answer = client.get("/readyz")
    return answer.status_code, answer.json()


def wait_stage(server: AccordServer, stage: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60.0  # a bound on a noisy machine, not a timing assertion
    while time.monotonic() < deadline:
        code, body = readiness(server)
        events = body["dependencies"].get("events", {})
        if events.get("stage") == stage:
            assert code == 200, body  # the consumer's stage never takes the API out of service
            return dict(events)
        time.sleep(0.1)
    pytest.fail(f"/readyz never showed the consumer {stage}: {readiness(server)}")


async def test_serve_events_consumes_names_its_stage_and_stops_cleanly(
    own_redis: RedisServer, sqlite_url: str, tmp_path: Path, accord_servers: AccordServers, engine_for
) -> None:
    server = accord_servers.start(sqlite_url, own_redis.url, args=("--events", "--events-consumer", "srv1"))
    events = wait_stage(server, "consuming")
    assert events["role"] == "consumer" and events["consumer"] == "srv1" and events["ok"] is True

    engine, _keys = await engine_for(sqlite_url)
    pipeline = await start(
        "svc", sqlite_url, own_redis.url, tmp_path / "spool", policy=SamplingPolicy.of(sample_rate=1.0)
    )
    try:
        for i in range(200):
            assert pipeline.emit({"route": "/x", "status": 200, "i": i})
        assert await pipeline.flush()

        async def all_in() -> bool:
            return len(set(await event_ids(engine))) == 200

        await wait_for(all_in, within=60.0, what="the server's consumer to insert 200 events")
        with server.client() as client:
            metrics = client.get("/metrics").text
        assert "accord_events_consumer_entries_total" in metrics

        own_redis.kill()
        paused = wait_stage(server, "paused")
        assert paused["ok"] is False and paused["degraded"] is True and paused["error"]
        assert "detail" not in paused  # the error's text is for token holders only
        own_redis.start()
        wait_stage(server, "consuming")
    finally:
        await pipeline.aclose()

    server.stop()  # SIGTERM: fails the test if the process does not exit
    logs = server.logs()
    assert "events consumer srv1 started in this server" in logs
    assert "Traceback" not in logs and "did not stop within" not in logs
    assert len(await event_ids(engine)) == len(set(await event_ids(engine)))


def test_serve_events_without_redis_refuses_to_start_naming_the_variable(sqlite_url: str, tmp_path: Path) -> None:
    env = child_env({"ACCORD_DB_URL": sqlite_url})
    env.pop("ACCORD_REDIS_URL", None)
    done = subprocess.run(
        [ACCORD, "serve", "--port", "1", "--events"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done
    assert "ACCORD_REDIS_URL" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "accord.db").exists()  # refused before anything was opened
