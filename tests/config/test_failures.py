"""DESIGN.md §5, one test per line of the failure table, against real Redis and PostgreSQL processes we kill."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa

import accord
from accord import ReadOnlyError, StoreUnavailableError
from accord.store.entry_codec import decode_entry
from accord.store.kv import SqlKVStore
from tests.bus.deployment import redis_keys
from tests.config.procs_worker import BATCH_POINTS, BATCH_SIZE, MIGRATION_POINTS, Child, Knobs, eventually
from tests.harness import PostgresDatabase, RedisServer

LEVEL_KEY = "config/knobs/level"
FAST: dict[str, Any] = {"check_interval": 0.2, "poll_interval": 0.02, "start_timeout": 3.0, "use_env": False}


async def open_cfg(db_url: str, redis_url: str = "", **options: Any) -> accord.LiveConfig:
    return await accord.connect(db_url, redis_url, groups=[Knobs], **(FAST | options))


def on_bus(mode: str, *cfgs: accord.LiveConfig) -> bool:
    return all(cfg.status().bus == mode for cfg in cfgs)


async def cache_matches_store(raw: aioredis.Redis, store: SqlKVStore) -> bool:
    """The Redis cache is complete and holds exactly what the database holds, at the database's revision."""
    revision, entries = await store.snapshot()
    keys = await redis_keys(store)
    marker = await raw.get(keys.cache_revision)
    cached = {key.decode(): decode_entry(body) for key, body in (await raw.hgetall(keys.cache_values)).items()}
    expected = {e.key: (e.value, e.version, e.mod_revision) for e in entries}
    return (
        marker is not None
        and int(marker) == revision
        and expected == {key: (e.value, e.version, e.mod_revision) for key, e in cached.items()}
    )


async def cache_true_to_its_marker(raw: aioredis.Redis, store: SqlKVStore) -> bool:
    """The cache is complete and holds exactly the database's state as of the revision its marker names."""
    keys = await redis_keys(store)
    marker = await raw.get(keys.cache_revision)
    if marker is None:
        return False
    state: dict[str, tuple[bytes | None, int, int]] = {}
    for change in await store.changes_since(0):
        if change.revision <= int(marker):
            state[change.key] = (change.value, change.version, change.revision)
    expected = {key: row for key, row in state.items() if row[0] is not None}  # deletes leave no entry
    cached = {key.decode(): decode_entry(body) for key, body in (await raw.hgetall(keys.cache_values)).items()}
    return expected == {key: (e.value, e.version, e.mod_revision) for key, e in cached.items()}


async def published_revision(pubsub: Any, revision: int) -> bool:
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
    # A signed message: "a1.<hmac>.<json body>".
    return message is not None and json.loads(message["data"].split(b".", 2)[2])["r"] == revision


# ----- Redis restarts empty ----------------------------------------------------------------------


async def test_redis_restarting_empty_loses_nothing_and_the_cache_is_rebuilt(
    pg_url: str, own_redis: RedisServer
) -> None:
    async with await open_cfg(pg_url, own_redis.url) as a, await open_cfg(pg_url, own_redis.url) as b:
        await eventually(lambda: on_bus("redis", a, b), "both instances on the redis bus")
        await a.set("knobs.name", "before")
        await a.set("knobs.level", 1)
        await eventually(lambda: b.knobs.level == 1 and b.knobs.name == "before", "b to see the first writes")

        own_redis.kill()
        during = await a.set("knobs.level", 2)  # goes to the database; the bus falls back to NOTIFY
        assert during.value == 2 and a.knobs.level == 2
        await eventually(lambda: b.knobs.level == 2, "b to see the write made while redis was down")
        await eventually(lambda: on_bus("postgres", a, b), "both instances on the fallback bus")
        assert a.status().fallback_active and b.status().bus_degraded
        assert a.knobs.name == b.knobs.name == "before"

        own_redis.start()  # same port, empty: no marker, no values
        async with aioredis.Redis.from_url(own_redis.url) as raw:
            await eventually(lambda: cache_matches_store(raw, a.store), "the cache rebuilt from the database")
            assert decode_entry(await raw.hget((await redis_keys(a.store)).cache_values, LEVEL_KEY)).value == b"2"
            await eventually(lambda: on_bus("redis", a, b), "both instances back on the redis bus")
            assert not a.status().fallback_active and not b.status().bus_degraded

            async with raw.pubsub() as pubsub:
                await pubsub.subscribe((await redis_keys(a.store)).changes_channel)
                after = await a.set("knobs.level", 3)
                await eventually(lambda: published_revision(pubsub, after.mod_revision), "the write on redis")
            await eventually(lambda: b.knobs.level == 3, "b to see the write made after the restart")
            await eventually(lambda: cache_matches_store(raw, a.store), "the cache to follow the new write")


async def test_a_cache_update_lost_to_a_redis_hiccup_gets_the_cache_rebuilt(
    pg_url: str, own_redis: RedisServer
) -> None:
    """A missed update must not leave a cache whose marker claims a revision its values do not reflect."""
    async with await open_cfg(pg_url, own_redis.url, check_interval=60.0) as a:
        await a.set("knobs.level", 1)
        await a.check_once()
        async with aioredis.Redis.from_url(own_redis.url) as raw:
            assert await cache_matches_store(raw, a.store)
            await raw.client_kill_filter(_type="normal", skipme=True)  # a's pooled connections die
            await a.set("knobs.level", 2)  # committed; its cache update hits a dead connection
            latest = await a.set("knobs.name", "later")  # this update gets through...
            assert (
                int(await raw.get((await redis_keys(a.store)).cache_revision) or 0) < latest.mod_revision
            )  # ...but cannot claim the gap
            await a.check_once()
            assert await cache_matches_store(raw, a.store)


# ----- the database goes down while running ----------------------------------------------------


async def test_database_down_serves_memory_and_refuses_writes_without_half_applying(
    own_pg: PostgresDatabase, tmp_path: Path
) -> None:
    async with await open_cfg(own_pg.url) as a, await open_cfg(own_pg.url) as b:
        before = await a.set("knobs.level", 1)
        await eventually(lambda: b.knobs.level == 1, "b to see level 1")
        revision = a.last_revision

        own_pg.server.kill()
        assert a.knobs.level == 1 and a.get("knobs.level") == 1 and b.knobs.level == 1
        with pytest.raises(StoreUnavailableError) as failure:
            await a.set("knobs.level", 5)
        assert "database" in failure.value.detail and str(own_pg.server.port) in failure.value.detail
        assert a.knobs.level == 1 and a.meta("knobs.level").version == before.version
        assert a.last_revision == revision
        await eventually(
            lambda: a.status().database == b.status().database == "degraded", "status to report the database"
        )

        own_pg.server.start()
        async with await SqlKVStore.from_url(own_pg.url, migrate=False) as raw:
            entry = await raw.get(LEVEL_KEY)
            assert entry is not None and entry.value == b"1" and entry.version == before.version
            assert await raw.current_revision() == revision
            assert [c.version for c in await raw.history(LEVEL_KEY)] == [before.version]
        await eventually(lambda: a.status().database == b.status().database == "ok", "the database back")
        assert a.knobs.level == b.knobs.level == 1 and b.last_revision == revision  # no phantom change applied

        await a.set("knobs.level", 7)
        await eventually(lambda: b.knobs.level == 7, "b to see the first write after recovery")
        writer = await Child.start(tmp_path / "writer.log", "set", own_pg.url, "-", "knobs.level", "9")
        try:
            done = await writer.event("set")
        finally:
            await writer.kill()
        await eventually(
            lambda: a.knobs.level == b.knobs.level == 9 and a.last_revision == done["revision"],
            "both to see another process's write",
        )


# ----- Redis down at start -----------------------------------------------------------------------


async def test_redis_down_at_start_propagates_by_notify_then_switches_to_redis(
    pg_url: str, own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    own_redis.kill()
    only_the_bus = {"check_interval": 60.0}  # the periodic check cannot deliver anything within this test
    with caplog.at_level(logging.WARNING, logger="accord"):
        a = await open_cfg(pg_url, own_redis.url, **only_the_bus)
    async with a, await open_cfg(pg_url, own_redis.url, **only_the_bus) as b:
        assert any("redis" in r.getMessage() and "unreachable" in r.getMessage() for r in caplog.records)
        for cfg in (a, b):
            status = cfg.status()
            assert status.bus == "postgres" and status.fallback_active and status.bus_degraded
            assert status.database == "ok" and not status.read_only

        await a.set("knobs.level", 11)
        await eventually(lambda: b.knobs.level == 11, "b to see a's write through NOTIFY")
        await b.set("knobs.name", "from-b")
        await eventually(lambda: a.knobs.name == "from-b", "a to see b's write through NOTIFY")

        own_redis.start()
        await eventually(lambda: on_bus("redis", a, b), "both instances to reconnect to redis")
        assert not a.status().bus_degraded and not b.status().fallback_active
        async with aioredis.Redis.from_url(own_redis.url) as raw, raw.pubsub() as pubsub:
            await pubsub.subscribe((await redis_keys(a.store)).changes_channel)
            after = await a.set("knobs.level", 12)
            await eventually(lambda: published_revision(pubsub, after.mod_revision), "the write on redis")
            await eventually(lambda: b.knobs.level == 12, "b to see a write carried by redis")
            await a.check_once()
            assert await cache_matches_store(raw, a.store)


# ----- the database is down at start -----------------------------------------------------------


async def test_database_down_at_start_serves_the_redis_cache_read_only(
    own_pg: PostgresDatabase, own_redis: RedisServer
) -> None:
    async with await open_cfg(own_pg.url, own_redis.url) as writer:
        await writer.set("knobs.level", 21)
        await writer.set("knobs.name", "cached")
        async with aioredis.Redis.from_url(own_redis.url) as raw:
            await eventually(lambda: cache_matches_store(raw, writer.store), "a complete cache")

    own_pg.server.kill()
    async with await open_cfg(own_pg.url, own_redis.url, start_timeout=1.0) as reader:
        status = reader.status()
        assert reader.read_only and status.read_only and status.database == "degraded"
        assert reader.knobs.level == 21 and reader.knobs.name == "cached"
        with pytest.raises(ReadOnlyError) as refused:
            await reader.set("knobs.level", 22)
        assert isinstance(refused.value, StoreUnavailableError)
        assert reader.knobs.level == 21

        own_pg.server.start()
        await eventually(lambda: not reader.read_only and reader.status().database == "ok", "read-only to end")
        written = await reader.set("knobs.level", 23)
        assert written.version == 2 and reader.knobs.name == "cached"
    async with await SqlKVStore.from_url(own_pg.url, migrate=False) as raw_store:
        entry = await raw_store.get(LEVEL_KEY)
        assert entry is not None and entry.value == b"23"


async def test_database_down_at_start_without_cache_or_snapshot_fails_naming_the_database(
    own_pg: PostgresDatabase, own_redis: RedisServer, tmp_path: Path
) -> None:
    own_pg.server.kill()
    for redis_url in ("", own_redis.url):  # no Redis at all, and a Redis that holds no cache
        with pytest.raises(StoreUnavailableError) as failure:
            await open_cfg(own_pg.url, redis_url, start_timeout=1.0, snapshot_file=str(tmp_path / "absent.json"))
        assert not isinstance(failure.value, ReadOnlyError)
        assert "database" in failure.value.detail and f"127.0.0.1:{own_pg.server.port}" in failure.value.detail


async def test_database_down_at_start_serves_the_snapshot_file_read_only(
    own_pg: PostgresDatabase, tmp_path: Path
) -> None:
    snapshot = tmp_path / "last-known-good.json"
    async with await open_cfg(own_pg.url, snapshot_file=str(snapshot)) as writer:
        await writer.set("knobs.level", 31)

        def snapshot_current() -> bool:
            return snapshot.exists() and json.loads(snapshot.read_text())["revision"] == writer.last_revision

        await eventually(snapshot_current, "the snapshot file to catch up")

    own_pg.server.kill()
    async with await open_cfg(own_pg.url, snapshot_file=str(snapshot), start_timeout=1.0) as reader:
        assert reader.read_only and reader.status().database == "degraded"
        assert reader.knobs.level == 31
        with pytest.raises(ReadOnlyError):
            await reader.set("knobs.level", 32)
        own_pg.server.start()
        await eventually(lambda: not reader.read_only, "read-only to end once the database is back")
        assert (await reader.set("knobs.level", 33)).version == 2


# ----- the bus drops messages ------------------------------------------------------------------


@pytest.mark.parametrize("with_redis", [False, True], ids=["postgres", "postgres+redis"])
async def test_a_change_no_bus_carried_arrives_by_the_periodic_check(
    pg_url: str, with_redis: bool, request: pytest.FixtureRequest
) -> None:
    redis_url = request.getfixturevalue("redis_url") if with_redis else ""
    async with await open_cfg(pg_url, redis_url) as a, await open_cfg(pg_url, redis_url) as b:
        await a.set("knobs.level", 1)
        await eventually(lambda: b.knobs.level == 1, "b to see the announced write")
        if with_redis:
            await eventually(lambda: on_bus("redis", a, b), "both instances on the redis bus")
            async with aioredis.Redis.from_url(redis_url) as raw:
                await raw.flushall()
        async with await SqlKVStore.from_url(pg_url, migrate=False) as raw_store:
            silent = await raw_store.put(LEVEL_KEY, b"42", actor="no-bus")  # neither NOTIFY nor PUBLISH
        await eventually(
            lambda: a.knobs.level == b.knobs.level == 42 and a.last_revision == b.last_revision == silent.revision,
            "both instances to pick up the silent write",
        )
        if with_redis:
            async with aioredis.Redis.from_url(redis_url) as raw:
                # Rebuilt (before or after the silent write, which no process copies into the cache afterwards).
                await eventually(lambda: cache_true_to_its_marker(raw, a.store), "the flushed cache rebuilt")


# ----- a writer is killed mid-write ------------------------------------------------------------


async def assert_batches_stored(url: str, expected: int) -> None:
    """Exactly batches 0 .. expected-1 are stored, each whole, and revisions have no gaps."""
    async with await SqlKVStore.from_url(url, migrate=False) as store:
        revision, entries = await store.snapshot("batch/")
        history = await store.changes_since(0)
        current = await store.current_revision()
    sizes = Counter(int(e.key.split("/")[1]) for e in entries)
    assert {batch: n for batch, n in sizes.items() if n != BATCH_SIZE} == {}, "a batch was torn"
    assert sorted(sizes) == list(range(expected)), "every committed batch is stored, the killed one is not"
    assert [c.revision for c in history] == list(range(1, current + 1)), "history has a gap"
    assert current == revision == expected * BATCH_SIZE


@pytest.mark.parametrize(
    ("backend", "point"),
    [("sqlite", "mid_batch"), ("sqlite", "before_commit"), ("postgres", "before_commit")],
    ids=["sqlite-half-written", "sqlite-all-rows-written", "postgres-all-rows-written"],
)
async def test_a_writer_killed_inside_its_transaction_leaves_every_batch_whole_or_absent(
    backend: str, point: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The child stops inside batch N's transaction (rows written, no COMMIT) and says so; then it is SIGKILLed."""
    assert point in BATCH_POINTS
    url: str = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    stored = 0
    for round_ in range(2):
        stop_at = stored + 2 + round_  # a few batches commit first, so the killed one is not the very first write
        writer = await Child.start(tmp_path / f"writer-{round_}.log", "batches", url, str(stored), str(stop_at), point)
        try:
            inside = await writer.event("in_transaction", batch=stop_at)
        finally:
            await writer.kill()
        assert inside["rows"] == (BATCH_SIZE // 2 if point == "mid_batch" else BATCH_SIZE)
        committed = [line["batch"] for line in writer.seen if line.get("event") == "committed"]
        assert committed == list(range(stored, stop_at))
        await assert_batches_stored(url, stop_at)
        stored = stop_at
    async with await open_cfg(url) as cfg:
        meta = await cfg.set("knobs.level", 1)
        declarations = len(cfg.replica.entries("schema/"))  # each registered schema is a revision too
        assert meta.version == 1 and meta.mod_revision == stored * BATCH_SIZE + declarations + 1


async def accord_tables(url: str) -> list[str]:
    async with await SqlKVStore.from_url(url, migrate=False) as store, store.engine.connect() as conn:
        names = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    return sorted(name for name in names if name.startswith("accord_"))


@pytest.mark.parametrize("point", MIGRATION_POINTS)
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_process_killed_inside_its_first_migration_leaves_no_trace_and_a_store_that_starts(
    backend: str, point: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url: str = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    starter = await Child.start(tmp_path / "starter.log", "migrate", url, point)
    try:
        await starter.event("in_migration", point=point)
    finally:
        await starter.kill()
    assert await accord_tables(url) == [], "the migrations run in one transaction: a kill inside it undoes them all"
    async with await open_cfg(url) as cfg:
        meta = await cfg.set("knobs.level", 5)
        assert meta.version == 1 and cfg.knobs.level == 5
    async with await open_cfg(url) as again:
        assert again.knobs.level == 5
    assert "accord_kv" in await accord_tables(url)
