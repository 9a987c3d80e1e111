"""Timers in database time: arm/expire, leases taken atomically, nothing revisioned (SQLite and PostgreSQL)."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from accord.store.kv import SqlKVStore
from tests.harness.backends import Backend


@pytest.fixture
async def store(store_backend: Backend) -> AsyncIterator[SqlKVStore]:
    async with await SqlKVStore.from_url(store_backend.db_url) as kv:
        yield kv


async def test_arm_expire_disarm_without_a_revision(store: SqlKVStore) -> None:
    timers = store.timers()
    before = await store.current_revision()
    await timers.arm("ttl/a", 0.3)
    await timers.arm("ttl/b", 60)
    await timers.arm("peer/x", 60)
    assert await timers.expired("ttl/") == []
    assert await timers.alive("ttl/") == ["ttl/a", "ttl/b"]
    await asyncio.sleep(0.6)
    assert await timers.expired("ttl/") == ["ttl/a"]
    assert await timers.alive("") == ["peer/x", "ttl/b"]
    await timers.arm("ttl/a", 60)  # re-arming revives it
    assert await timers.expired("ttl/") == []
    await timers.disarm("ttl/a")
    assert await timers.alive("ttl/") == ["ttl/b"]
    assert await store.current_revision() == before, "timers must not write revisions"
    assert await store.changes_since(before) == []


async def test_prefix_is_literal(store: SqlKVStore) -> None:
    timers = store.timers()
    await timers.arm("ttl_x", 60)
    await timers.arm("ttl%y", 60)
    assert await timers.alive("ttl%") == ["ttl%y"]
    assert await timers.alive("ttl_") == ["ttl_x"]


async def test_arm_absent_keeps_an_existing_timer(store: SqlKVStore) -> None:
    timers = store.timers()
    assert await timers.arm_absent("ttl/c", 0.2)
    assert not await timers.arm_absent("ttl/c", 60)
    await asyncio.sleep(0.5)
    assert await timers.expired("ttl/") == ["ttl/c"], "an expired timer counts as present"
    assert not await timers.arm_absent("ttl/c", 60)


async def test_acquire_renew_release_and_takeover(store: SqlKVStore) -> None:
    timers = store.timers()
    assert await timers.holder("leader") is None
    assert await timers.acquire("leader", "a", 0.4)
    assert await timers.holder("leader") == "a"
    assert not await timers.acquire("leader", "b", 10), "held by a: b must not take it"
    assert await timers.acquire("leader", "a", 0.4), "a renews its own lease"
    await asyncio.sleep(0.7)
    assert await timers.holder("leader") is None, "expired"
    assert await timers.acquire("leader", "b", 10), "b takes the expired lease"
    assert not await timers.acquire("leader", "a", 10)
    await timers.release("leader", "a")  # not a's: left alone
    assert await timers.holder("leader") == "b"
    await timers.release("leader", "b")
    assert await timers.holder("leader") is None
    assert await timers.acquire("leader", "a", 10)


async def test_racing_acquirers_one_wins(store_backend: Backend) -> None:
    stores = [await SqlKVStore.from_url(store_backend.db_url) for _ in range(4)]
    try:
        for _round in range(5):
            name = f"race/{_round}"
            won = await asyncio.gather(*(s.timers().acquire(name, f"h{i}", 30) for i, s in enumerate(stores)))
            assert sum(won) == 1, won
            assert await stores[0].timers().holder(name) == f"h{won.index(True)}"
    finally:
        for s in stores:
            await s.aclose()
