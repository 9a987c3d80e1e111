"""Producer reports (events/reports.py): the server sees every producer's stage, fallback and drops.

A real pipeline on PostgreSQL with a real redis-server that is killed and restarted: ``accord events
stats`` (the library call, and the CLI as a subprocess) shows the producer on Redis, then on the
database stage as a fallback, then on Redis again; its row goes when it closes, and a row nobody
rewrites reads as stale.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from accord.events import PipelineOptions, SamplingPolicy, start
from accord.events.admin import event_stats
from accord.events.factory import MigratedEngine
from accord.events.reports import STALE_AFTER_S, read_reports
from accord.store.engine import create_engine, resolve_db_url
from tests.events.conftest import wait_for
from tests.harness import child_env
from tests.harness.redis_server import RedisServer

ACCORD = str(Path(sys.executable).with_name("accord"))
OPTIONS = PipelineOptions(flush_interval_s=0.01, confirm_interval_s=0.2, spool_fsync="never", report_interval_s=0.2)


async def _producers(db_url: str, redis_url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await event_stats(db_url, redis_url))["producers"]
    return [p for p in found if p["service"] == "shop"]


async def test_the_stats_show_a_producers_stage_and_its_fallback_through_a_redis_outage(
    pg_url: str, own_redis: RedisServer, tmp_path: Path
) -> None:
    pipeline = await start(
        "shop", pg_url, own_redis.url, tmp_path / "spool", policy=SamplingPolicy.of(sample_rate=1.0), options=OPTIONS
    )
    try:

        async def reported(stage: str, fallback: bool) -> bool:
            pipeline.emit({"route": "/pay", "status": 200})
            found = await _producers(pg_url, own_redis.url) if stage == "redis" else await _from_db(pg_url)
            return any(p["stage"] == stage and p["fallback"] is fallback and not p["stale"] for p in found)

        await wait_for(lambda: reported("redis", False), within=30, what="a report on the Redis stage")
        (report,) = await _producers(pg_url, own_redis.url)
        assert report["instance"] == pipeline.instance and report["ready"] is True
        assert report["kept"].get("sampled", 0) >= 1 and report["breakers"]["redis"]["state"] == "closed"

        await asyncio.to_thread(own_redis.kill)
        await wait_for(lambda: reported("database", True), within=30, what="a report on the database stage")
        cli = await asyncio.to_thread(
            subprocess.run,
            [ACCORD, "events", "stats"],
            env=child_env({"ACCORD_DB_URL": pg_url, "COLUMNS": "200"}),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stderr
        assert "shop" in cli.stdout and "database (fallback from redis)" in cli.stdout, cli.stdout

        await asyncio.to_thread(own_redis.start)
        await wait_for(lambda: reported("redis", False), within=60, what="the report back on Redis")
    finally:
        await pipeline.aclose()
    assert await _from_db(pg_url) == [], "a closed producer's row is removed"


async def test_a_report_nobody_rewrites_reads_as_stale(pg_url: str, tmp_path: Path) -> None:
    pipeline = await start(
        "shop", pg_url, None, tmp_path / "spool", policy=SamplingPolicy.of(sample_rate=1.0), options=OPTIONS
    )
    try:
        await wait_for(lambda: _has_rows(pg_url), within=30, what="a first report")
        engine = create_engine(resolve_db_url(pg_url))
        try:
            (later,) = [
                p for p in await read_reports(engine, now=time.time() + STALE_AFTER_S + 5) if p["service"] == "shop"
            ]
        finally:
            await engine.dispose()
        assert later["stale"] is True and later["stage"] == "database" and later["fallback"] is False
        assert json.dumps(later)  # what the API answers is plain JSON
    finally:
        await pipeline.aclose()


async def _from_db(db_url: str) -> list[dict[str, Any]]:
    """The reports read without Redis (event_stats would also read the stream, which is down)."""
    migrated = MigratedEngine(create_engine(resolve_db_url(db_url)))
    try:
        return [p for p in await read_reports(await migrated.ready()) if p["service"] == "shop"]
    finally:
        await migrated.engine.dispose()


async def _has_rows(db_url: str) -> bool:
    return bool(await _from_db(db_url))
