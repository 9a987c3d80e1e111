"""The single-machine bus: fan-out within a process to receivers of the same store, polling for the rest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from accord.bus.local_bus import LocalChangeBus
from accord.bus.types import BusEvent, Resync
from accord.store.kv import SqlKVStore
from accord.store.types import Change
from tests.config.procs_worker import eventually

QUIET = 60.0  # a poll interval no test waits for: only fan-out can deliver


class Inbox:
    def __init__(self) -> None:
        self.events: list[BusEvent] = []

    async def __call__(self, event: BusEvent) -> None:
        self.events.append(event)

    def changes(self) -> list[Change]:
        return [e for e in self.events if isinstance(e, Change)]

    def resyncs(self) -> int:
        return sum(isinstance(e, Resync) for e in self.events)


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[SqlKVStore]:
    async with await SqlKVStore.from_url(sqlite_url) as opened:
        yield opened


async def test_fan_out_reaches_other_receivers_of_the_same_store_and_no_one_else(
    store: SqlKVStore, tmp_path: Path
) -> None:
    async with await SqlKVStore.from_url(f"sqlite:///{tmp_path}/other.db") as other:
        inboxes = [Inbox() for _ in range(3)]
        buses = [
            LocalChangeBus(store, store_id=store.identity, poll_interval=QUIET),
            LocalChangeBus(store, store_id=store.identity, poll_interval=QUIET),
            LocalChangeBus(other, store_id=other.identity, poll_interval=QUIET),
        ]
        for bus, inbox in zip(buses, inboxes, strict=True):
            await bus.start(inbox)
        change = await store.put("k/one", b"1")
        await buses[0].publish(change)
        assert [inbox.changes() for inbox in inboxes] == [[], [change], []]  # delivered before publish returns
        assert not any(bus.degraded or bus.fallback_active for bus in buses) and buses[0].mode == "local"

        await buses[1].aclose()
        await buses[0].publish(await store.put("k/two", b"2"))
        assert inboxes[1].changes() == [change]  # a closed bus hears nothing more
        for bus in (buses[0], buses[2]):
            await bus.aclose()


async def test_polling_reports_a_write_no_one_announced_and_stays_quiet_otherwise(store: SqlKVStore) -> None:
    inbox = Inbox()
    bus = LocalChangeBus(store, store_id=store.identity, poll_interval=0.02)
    await bus.start(inbox)
    try:
        await eventually(lambda: inbox.resyncs() == 1, "the first poll to report the revision")
        await asyncio.sleep(0.2)  # ten polls of an unchanged revision
        assert inbox.resyncs() == 1
        await store.put("k/silent", b"1")  # a write nobody publishes: another process's, say
        await eventually(lambda: inbox.resyncs() == 2, "polling to notice the moved revision")
        assert inbox.changes() == []
    finally:
        await bus.aclose()


async def test_polling_failures_mark_the_bus_degraded_until_the_store_answers(store: SqlKVStore) -> None:
    inbox = Inbox()
    bus = LocalChangeBus(store, store_id=store.identity, poll_interval=0.02)
    await bus.start(inbox)
    try:
        await eventually(lambda: inbox.resyncs() == 1, "the first poll")
        async with store.engine.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE accord_meta RENAME TO accord_meta_away"))
        await eventually(lambda: bus.degraded, "the failing poll to mark the bus degraded")
        async with store.engine.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE accord_meta_away RENAME TO accord_meta"))
        await eventually(lambda: not bus.degraded, "the bus to recover once the revision reads again")
    finally:
        await bus.aclose()
