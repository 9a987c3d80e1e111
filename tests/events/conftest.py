"""Helpers for the event pipeline tests: a pipeline and a consumer on real Redis and a real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from accord.events.consumer import Consumer, ConsumerOptions
from accord.events.factory import MigratedEngine
from accord.events.keys import EventKeys
from accord.store.engine import create_engine

FAST_CONSUMER = ConsumerOptions(name="c1", batch=200, max_deliveries=3, claim_idle_ms=100, block_ms=100)


@pytest.fixture
async def engine_for() -> AsyncIterator[Callable[[str], Awaitable[tuple[AsyncEngine, EventKeys]]]]:
    engines: list[AsyncEngine] = []

    async def make(url: str) -> tuple[AsyncEngine, EventKeys]:
        migrated = MigratedEngine(create_engine(url))
        engines.append(migrated.engine)
        keys = await migrated.keys()
        return migrated.engine, keys

    yield make
    for engine in engines:
        await engine.dispose()


async def event_ids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return [row[0] for row in await conn.execute(sa.text("SELECT event_id FROM accord_event"))]


async def seqs_by_producer(engine: AsyncEngine) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    async with engine.connect() as conn:
        for producer, seq in await conn.execute(sa.text("SELECT producer, seq FROM accord_event ORDER BY seq")):
            found.setdefault(producer, []).append(seq)
    return found


async def wait_for(condition: Callable[[], Awaitable[bool]], *, within: float = 30.0, what: str = "") -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``timeout`` (a bound, not a timing assertion)."""
    try:
        async with asyncio.timeout(within):
            while not await condition():  # noqa: ASYNC110 - the condition is a query, nothing to wait on
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"gave up waiting for {what or condition}")


async def consume_until(consumer: Consumer, condition: Callable[[], Awaitable[bool]], *, within: float = 30.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await wait_for(condition, within=within, what="the consumer to catch up")
    finally:
        stop.set()
        await task


def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"
