"""Reading events back: GET /api/events on a real server (ACL on events/), accord events query/stats --json."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from accord.events import SamplingPolicy, start
from tests.harness import AccordServers
from tests.server.server_harness import create_token


async def _store_events(db_url: str, spool: Path) -> None:
    pipeline = await start(
        "shop", db_url, None, spool, policy=SamplingPolicy.of(critical_routes=["/pay"], sample_rate=1.0)
    )
    try:
        pipeline.emit({"route": "/pay", "status": 200, "order": "o-1", "request_id": "r-1"})
        pipeline.emit({"route": "/items", "status": 503, "order": "o-2", "request_id": "r-2"})
        pipeline.emit({"route": "/items", "status": 200, "order": "o-3", "request_id": "r-3"})
        assert await pipeline.flush()
    finally:
        await pipeline.aclose()


def _accord(*args: str, db_url: str) -> subprocess.CompletedProcess[str]:
    accord = str(Path(sys.executable).with_name("accord"))
    env = {**os.environ, "ACCORD_DB_URL": db_url}
    return subprocess.run([accord, *args], capture_output=True, text=True, env=env, check=False)


async def test_query_and_stats_on_the_command_line(sqlite_url: str, tmp_path: Path) -> None:
    await _store_events(sqlite_url, tmp_path / "spool")
    found = await asyncio.to_thread(_accord, "events", "query", "--where", "route=/items", "--json", db_url=sqlite_url)
    assert found.returncode == 0, found.stderr
    lines = [json.loads(line) for line in found.stdout.splitlines()]
    assert sorted(e["order"] for e in lines) == ["o-2", "o-3"]
    by_field = await asyncio.to_thread(
        _accord, "events", "query", "--where", "order=o-2", "--since", "1h", "--json", db_url=sqlite_url
    )
    assert [json.loads(line)["request_id"] for line in by_field.stdout.splitlines()] == ["r-2"]
    stats = await asyncio.to_thread(_accord, "events", "stats", "--json", db_url=sqlite_url)
    summary = json.loads(stats.stdout)
    assert summary["kept_by_rule"] == {"critical": 1, "error": 1, "sampled": 1}
    assert summary["by_status_class"] == {"2xx": 2, "5xx": 1}
    bad = await asyncio.to_thread(_accord, "events", "query", "--since", "yesterday", db_url=sqlite_url)
    assert bad.returncode == 2 and "--since" in bad.stderr


async def test_get_api_events_filters_and_needs_read_on_events(
    sqlite_url: str, tmp_path: Path, accord_servers: AccordServers
) -> None:
    await _store_events(sqlite_url, tmp_path / "spool")
    server = await asyncio.to_thread(accord_servers.start, sqlite_url, None)
    admin = server.admin()
    reader = create_token(admin, "events-reader", ["events/=read"])
    other = create_token(admin, "config-reader", ["config/=read"])
    with server.client(reader) as client:
        answer = client.get("/api/events", params={"where": ["status=503"], "limit": 10})
        assert answer.status_code == 200, answer.text
        assert [e["order"] for e in answer.json()] == ["o-2"]
        assert client.get("/api/events", params={"since": "soon"}).status_code == 400
    with server.client(other) as client:
        assert client.get("/api/events").status_code == 403
    admin.close()
