"""Producer reports: each pipeline writes its stage and counters into the database every few seconds.

A producer's active stage, its drops and its spool live in its own process (``pipeline.stats()``,
its ``/metrics``); an operator looking at the server (``accord events stats``, the admin UI) needs
them for every producer at once. So each pipeline with a database rewrites one row of
``accord_event_producer`` (migration 0010) every ``REPORT_INTERVAL_S``, and removes it on close. A
row older than ``STALE_AFTER_S`` is shown as stale: the producer died, hangs, or lost its database
(a producer on the spool stage because the database is down cannot report — that is the one state
the report cannot show, and "stale" is how it looks). Remote producers (``addr=``) open no database
and write no report; the server's relay, which delivers their batches, does. A failed write is
retried at the next interval and never touches the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from accord.store.events import ProducerReport, producer_reports, remove_producer_report, write_producer_report

if TYPE_CHECKING:
    from accord.events.pipeline import Pipeline

__all__ = ["REPORT_INTERVAL_S", "STALE_AFTER_S", "Reporter", "read_reports", "report_of"]

log = logging.getLogger("accord.events.reports")

REPORT_INTERVAL_S = 5.0  # PipelineOptions.report_interval_s's default
STALE_AFTER_S = 15.0  # three missed reports at the default interval
SHOWN_FOR_S = 600.0  # a stale report is listed (as stale) this long, then left out
WRITE_TIMEOUT_S = 2.0


def report_of(pipeline: Pipeline) -> dict[str, Any]:
    """What one producer tells the server: its stage (and whether that is a fallback), health and counters."""
    health, ready = pipeline.health()
    stats = asdict(pipeline.stats())
    return {
        "service": pipeline.service,
        "instance": pipeline.instance,
        "stage": pipeline.active_stage,
        "top_stage": pipeline.top_stage,
        "fallback": pipeline.active_stage != pipeline.top_stage,
        "ready": ready,
        "breakers": health["breakers"],
        **{name: stats[name] for name in ("kept", "dropped", "delivered", "spooled", "replayed", "buffered")},
        "spool_bytes": stats["spool_bytes"],
        "policy_version": stats["policy_version"],
    }


class Reporter:
    """Rewrites the pipeline's row every ``interval_s`` on its own task; ``aclose`` removes the row."""

    def __init__(
        self,
        pipeline: Pipeline,
        engine: Callable[[], Awaitable[AsyncEngine]],
        *,
        interval_s: float = REPORT_INTERVAL_S,
    ) -> None:
        self._pipeline = pipeline
        self._engine = engine
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self.failures = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="accord-events-reporter")

    async def report_now(self) -> None:
        row = ProducerReport(
            self._pipeline.producer,
            self._pipeline.service,
            self._pipeline.instance,
            time.time(),
            json.dumps(report_of(self._pipeline), sort_keys=True),
        )
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await write_producer_report(await self._engine(), row)

    async def _run(self) -> None:
        while True:
            try:
                await self.report_now()
            except Exception as exc:  # the database is away: the next interval tries again
                self.failures += 1
                log.debug("events producer report not written: %s", type(exc).__name__)
            await asyncio.sleep(self._interval_s)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):  # a row left behind goes stale and out of the listing
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await remove_producer_report(await self._engine(), self._pipeline.producer)


async def read_reports(engine: AsyncEngine, now: float | None = None) -> list[dict[str, Any]]:
    """Every producer's last report of the past ``SHOWN_FOR_S``, with its age and whether it is stale."""
    now = time.time() if now is None else now
    shown = []
    for row in await producer_reports(engine, now - SHOWN_FOR_S):
        report: dict[str, Any] = json.loads(row.report)
        age = max(0.0, now - row.reported_at)
        shown.append({**report, "producer": row.producer, "age_s": round(age, 1), "stale": age > STALE_AFTER_S})
    return shown
