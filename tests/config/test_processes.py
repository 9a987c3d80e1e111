"""Guarantees between OS processes sharing one store: visibility of writes and no lost update under CAS."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

import accord
from accord.store import tables
from accord.store.kv import SqlKVStore
from tests.config.procs_worker import Child, Knobs

BACKENDS = ["sqlite", "postgres", "postgres+redis"]
COUNTER_KEY = "config/knobs/counter"
WRITERS = 4
INCREMENTS = 50
STARTERS = 12


@pytest.fixture(params=BACKENDS)
def urls(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(database URL, Redis URL or "-") for one fresh store on the backend under test."""
    backend: str = request.param
    if backend == "sqlite":
        return request.getfixturevalue("sqlite_url"), "-"
    redis_url: str = request.getfixturevalue("redis_url") if backend == "postgres+redis" else "-"
    return request.getfixturevalue("pg_url"), redis_url


async def stop_all(children: list[Child]) -> None:
    await asyncio.gather(*(child.kill() for child in children))


async def test_a_write_in_one_process_is_seen_by_another(urls: tuple[str, str], tmp_path: Path) -> None:
    db_url, redis_url = urls
    children: list[Child] = []
    try:
        watcher = await Child.start(tmp_path / "watcher.log", "watch", db_url, redis_url)
        children.append(watcher)
        ready = await watcher.event("ready")
        assert ready["level"] == 0

        writer = await Child.start(tmp_path / "writer.log", "set", db_url, redis_url, "knobs.level", "41")
        children.append(writer)
        written = await writer.event("set")
        assert written["value"] == 41 and written["revision"] > ready["revision"]

        seen = await watcher.event("change", path="knobs.level", value=41)
        assert seen["revision"] == written["revision"]
        assert await writer.finish() == 0
        assert await watcher.finish() == 0
    finally:
        await stop_all(children)


async def test_concurrent_compare_and_set_writers_lose_no_update(urls: tuple[str, str], tmp_path: Path) -> None:
    """N processes x M read-increment-CAS loops end at exactly N*M, with one history version per increment."""
    db_url, redis_url = urls
    children: list[Child] = []
    try:
        for n in range(WRITERS):
            children.append(
                await Child.start(tmp_path / f"incr-{n}.log", "increment", db_url, redis_url, str(INCREMENTS))
            )
        for child in children:
            await child.event("ready")
        for child in children:
            child.send("go")
        results = [await child.event("done", within=100) for child in children]
        assert [r["increments"] for r in results] == [INCREMENTS] * WRITERS
        for child in children:
            assert await child.finish() == 0, child.log()
    finally:
        await stop_all(children)

    total = WRITERS * INCREMENTS
    async with await SqlKVStore.from_url(db_url, migrate=False) as store:
        entry = await store.get(COUNTER_KEY)
        history = await store.history(COUNTER_KEY)
    assert entry is not None and entry.value == str(total).encode() and entry.version == total
    assert sorted(change.version for change in history) == list(range(1, total + 1))
    assert all(change.value == str(change.version).encode() for change in history), "an increment was lost"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_instances_starting_together_all_start(backend: str, request: pytest.FixtureRequest) -> None:
    """A fleet starting at once on a fresh store (then again with the schemas gone): every instance comes up."""
    db_url: str = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")

    async def start() -> accord.LiveConfig:
        return await accord.connect(db_url, "", groups=[Knobs], start_timeout=20, use_env=False)

    for _ in range(4):  # the later rounds race on schema registration alone, the migrations being done
        results = await asyncio.gather(*(start() for _ in range(STARTERS)), return_exceptions=True)
        started = [r for r in results if isinstance(r, accord.LiveConfig)]
        await asyncio.gather(*(cfg.aclose() for cfg in started))
        assert [r for r in results if not isinstance(r, accord.LiveConfig)] == []
        async with await SqlKVStore.from_url(db_url, migrate=False) as store, store.engine.begin() as conn:
            await conn.execute(sa.delete(tables.setting_schema))
