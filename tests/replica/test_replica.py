"""The replica: a live copy of the keys under some prefixes, on SQLite, PostgreSQL and PostgreSQL + Redis.

The periodic revision check runs at production's interval (5 s) here, and SQLite's polling is slowed
down to a minute, so only the bus and the replica's own gap handling can deliver anything a test waits for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import stat
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from accord.bus.auth import BusAuth, claimed_revision
from accord.bus.wire import PG_NOTIFY_MAX_BYTES, encode_change
from accord.core.errors import ReadOnlyError
from accord.replica import replica as replica_module
from accord.replica import snapshot_file
from accord.replica.replica import DEFAULT_CHECK_INTERVAL_S, Replica
from accord.replica.status import ReplicaStatus
from accord.store.kv import SqlKVStore
from accord.store.types import Change, Entry, PutItem
from tests.config.procs_worker import eventually

BACKENDS = ("sqlite", "postgres", "postgres_redis")
PREFIXES = ("app/", "acl/")
QUIET_POLL_S = 60.0


@pytest.fixture(params=BACKENDS)
def urls(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(database URL, Redis URL or "") of a fresh store on each backend in turn."""
    name: str = request.param
    if name == "sqlite":
        return request.getfixturevalue("sqlite_url"), ""
    redis_url: str = request.getfixturevalue("redis_url") if name == "postgres_redis" else ""
    return request.getfixturevalue("pg_url"), redis_url


async def open_replica(db_url: str, redis_url: str = "", **options: object) -> Replica:
    defaults: dict[str, object] = {
        "prefixes": PREFIXES,
        "actor": "replica-test",
        "check_interval": DEFAULT_CHECK_INTERVAL_S,
        "poll_interval": QUIET_POLL_S,
        "start_timeout": 10.0,
    }
    replica = await Replica.from_url(db_url, redis_url, **(defaults | options))  # type: ignore[arg-type]
    assert await replica.wait_connected(10), "the bus must listen before the test writes"
    return replica


async def settled(replica: Replica) -> None:
    """Both listeners of a Redis replica connected and their connect-time resyncs done: none can fill a gap later."""
    assert await replica._propagation.bus.fallback.wait_connected(10)  # type: ignore[attr-defined]
    await replica.resync()  # queued behind the listeners' own resyncs on the replica's lock


def values(replica: Replica) -> dict[str, bytes]:
    return {e.key: e.value for e in replica.entries()}


async def test_a_write_applies_here_before_it_returns_and_reaches_another_replica(urls: tuple[str, str]) -> None:
    async with await open_replica(*urls) as a, await open_replica(*urls) as b:
        [change] = await a.put_keys([PutItem("app/one", b"1")])
        assert a.entry("app/one") is not None and a.last_revision == change.revision  # no bus needed for our own
        await eventually(lambda: b.last_revision == change.revision, "b to apply a's write")
        assert values(b) == {"app/one": b"1"} and b.entry("app/one") == a.entry("app/one")

        deleted = await b.delete_key("app/one", expect_version=1)
        assert b.entry("app/one") is None
        await eventually(lambda: a.entry("app/one") is None and a.last_revision == deleted.revision, "the delete")


async def test_a_revision_gap_is_filled_at_once_not_at_the_next_check(urls: tuple[str, str]) -> None:
    """b hears revision n+2 having seen n: it must fetch n+1 and apply both there and then.

    Dropping the change after noticing the gap would leave b behind until the periodic check, which
    runs at production's 5 s; and the bus listener would never fire for n+2, since only the check
    would bring b forward. So this test fails on that bug however long it waited.
    """
    db_url, redis_url = urls
    async with await open_replica(db_url, redis_url) as a, await open_replica(db_url, redis_url) as b:
        heard: list[Change] = []
        b.on_bus_change(heard.append)
        await a.put_keys([PutItem("app/before", b"0")])
        await eventually(lambda: b.entry("app/before") is not None, "b to apply the first write")

        async with await SqlKVStore.from_url(db_url, migrate=False) as raw:
            silent = await raw.put("app/silent", b"1", actor="no-bus")  # revision n+1: nobody announces it
        [announced] = await a.put_keys([PutItem("app/announced", b"2")])  # n+2, on the bus
        assert announced.revision == silent.revision + 1

        await eventually(lambda: announced.revision in [c.revision for c in heard], "b to apply n+2 from the bus")
        assert values(b) == {"app/before": b"0", "app/silent": b"1", "app/announced": b"2"}
        assert b.last_revision == announced.revision
        assert b.gap_reads == (1 if redis_url or not db_url.startswith("sqlite") else 0), "the history was not read"


async def test_an_own_write_past_a_gap_returns_applied_in_order_whether_or_not_the_bus_fills_it(
    urls: tuple[str, str],
) -> None:
    """The write is held for the bus briefly (message buses), then the history is read: never out of order."""
    db_url, redis_url = urls
    async with await open_replica(db_url, redis_url) as a, await open_replica(db_url, redis_url) as b:
        seen: list[int] = []
        a.on_change(lambda change: seen.append(change.revision))
        async with await SqlKVStore.from_url(db_url, migrate=False) as raw:
            silent = await raw.put("app/silent", b"1", actor="no-bus")  # nobody announces it: the bus never fills
        [mine] = await a.put_keys([PutItem("app/mine", b"2")])
        assert mine.revision == silent.revision + 1
        assert a.last_revision == mine.revision and values(a) == {"app/silent": b"1", "app/mine": b"2"}
        assert seen == [silent.revision, mine.revision], "applied out of order, or one was lost"
        assert a.gap_reads == (1 if redis_url or not db_url.startswith("sqlite") else 0), "held without a message bus"

        seen.clear()
        [other] = await b.put_keys([PutItem("app/other", b"3")])  # announced: the bus fills a's coming gap
        [again] = await a.put_keys([PutItem("app/mine", b"4")])
        assert again.revision == other.revision + 1
        assert a.last_revision == again.revision and values(a)["app/other"] == b"3" and values(a)["app/mine"] == b"4"
        assert seen == [other.revision, again.revision]


async def test_a_held_write_is_published_before_its_hold_so_later_writers_never_wait_on_it(
    pg_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers after a held write may be holding for it: its message goes out at once, not when its hold ends."""
    monkeypatch.setattr(replica_module, "HOLD_S", 60.0)  # the hold can only end by the gap filling
    async with await open_replica(pg_url, redis_url, check_interval=QUIET_POLL_S) as a:  # no check fills it either
        await settled(a)
        auth = BusAuth(a.store)
        channel = (await auth.keys()).changes_channel
        async with aioredis.Redis.from_url(redis_url) as raw, raw.pubsub() as listener:
            await listener.subscribe(channel)
            silent = await a.store.put("app/silent", b"1", actor="no-bus")  # a gap only a message can fill
            writing = asyncio.create_task(a.put_keys([PutItem("app/mine", b"2")]))
            heard: list[int | None] = []
            async with asyncio.timeout(10.0):  # fails here if the write is published only when its hold ends
                while silent.revision + 1 not in heard:
                    message = await listener.get_message(timeout=1.0)
                    if message is not None and message["type"] == "message":
                        heard.append(claimed_revision(message["data"]))
            assert not writing.done(), "the write was published only once its hold had ended"
            await raw.publish(channel, await auth.seal(encode_change(silent, max_bytes=65536)))
            [mine] = await asyncio.wait_for(writing, 10.0)
        assert mine.revision == silent.revision + 1 and a.last_revision == mine.revision
        assert values(a) == {"app/silent": b"1", "app/mine": b"2"} and a.gap_reads == 0


async def test_a_change_heard_past_a_gap_waits_for_the_revision_before_it_instead_of_reading_the_history(
    pg_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """b hears n+1 before n (a server worker hears the other worker's PUT before its own is applied): it applies
    n, then n+1, both as the bus brought them, and reads no history."""
    monkeypatch.setattr(replica_module, "HOLD_S", 60.0)  # only n's message can end the hold
    async with await open_replica(pg_url, redis_url, check_interval=QUIET_POLL_S) as b:
        await settled(b)
        heard: list[int] = []
        b.on_bus_change(lambda change: heard.append(change.revision))
        first = await b.store.put("app/first", b"1", actor="elsewhere")  # committed; announced late, below
        second = await b.store.put("app/second", b"2", actor="elsewhere")
        auth = BusAuth(b.store)
        channel = (await auth.keys()).changes_channel
        async with aioredis.Redis.from_url(redis_url) as raw:
            for change in (second, first):
                await raw.publish(channel, await auth.seal(encode_change(change, max_bytes=65536)))
        await eventually(lambda: b.last_revision == second.revision, "b to apply both changes")
        assert heard == [first.revision, second.revision], "the early change was not held for the one before it"
        assert values(b) == {"app/first": b"1", "app/second": b"2"} and b.gap_reads == 0


async def test_values_too_large_or_secret_for_the_bus_are_fetched_by_key(urls: tuple[str, str]) -> None:
    big = b"x" * (PG_NOTIFY_MAX_BYTES + 1000)
    quiet = {"check_interval": QUIET_POLL_S}  # no periodic resync may deliver the changes instead of the bus
    async with await open_replica(*urls, **quiet) as a, await open_replica(*urls, **quiet) as b:
        heard: list[Change] = []
        b.on_bus_change(heard.append)
        await _until_the_bus_carries(a, heard)
        changes = await a.put_keys([PutItem("app/big", big), PutItem("app/sealed", b"ciphertext", secret=True)])
        await eventually(lambda: len(heard) == 2, "b to apply both changes from the bus")
        assert b.entry("app/big") == a.entry("app/big") and b.entry("app/sealed") == a.entry("app/sealed")
        assert b.last_revision == changes[-1].revision


async def _until_the_bus_carries(writer: Replica, heard: list[Change]) -> None:
    """Each bus's listener resyncs once when it connects (tests/bus); a write made meanwhile arrives through
    that resync, not the bus. Write until one is heard on the bus, so what follows is carried by it."""

    async def one_heard() -> bool:
        [change] = await writer.put_keys([PutItem("app/warm-up", str(time.monotonic_ns()).encode())])
        await asyncio.sleep(0.2)
        return change.revision in {c.revision for c in heard}

    await eventually(one_heard, "a warm-up write to arrive over the bus")
    heard.clear()


async def test_keys_outside_the_prefixes_are_not_held_but_move_the_revision(sqlite_url: str) -> None:
    async with await open_replica(sqlite_url) as replica:
        seen: list[tuple[str, Entry | None]] = []
        replica.on_entry(lambda key, entry: seen.append((key, entry)))
        changes = await replica.put_keys([PutItem("app/in", b"1"), PutItem("other/out", b"2")])
        assert values(replica) == {"app/in": b"1"} and [key for key, _ in seen] == ["app/in"]
        assert replica.last_revision == changes[-1].revision
        assert replica.covers("acl/tokens/x") and not replica.covers("other/out")


async def test_listeners_can_be_removed(sqlite_url: str) -> None:
    async with await open_replica(sqlite_url) as replica:
        seen: list[str] = []
        remove = replica.on_change(lambda change: seen.append(change.key))
        await replica.put_keys([PutItem("app/a", b"1")])
        remove()
        remove()  # twice is harmless
        await replica.put_keys([PutItem("app/b", b"1")])
        assert seen == ["app/a"]


async def test_status_is_a_frozen_typed_record(sqlite_url: str) -> None:
    async with await open_replica(sqlite_url) as replica:
        [change] = await replica.put_keys([PutItem("app/a", b"1")])
        status = replica.status()
        assert status == ReplicaStatus(
            revision=change.revision,
            database="ok",
            read_only=False,
            bus="local",
            bus_degraded=False,
            fallback_active=False,
        )
        assert status.database_ok and status.as_dict()["revision"] == change.revision
        with pytest.raises(dataclasses.FrozenInstanceError):
            status.revision = 0  # type: ignore[misc]


async def test_a_compacted_history_reloads_everything_and_reports_a_reload(sqlite_url: str) -> None:
    async with await open_replica(sqlite_url) as writer, await open_replica(sqlite_url, watch=False) as behind:
        reloads: list[tuple[int, bool]] = []
        behind.on_reload(lambda revision, fire: reloads.append((revision, fire)))
        await writer.put_keys([PutItem("app/a", b"1"), PutItem("app/b", b"1")])
        await writer.put_keys([PutItem("app/a", b"2")])
        await writer.delete_key("app/b")
        assert await writer.store.compact(writer.last_revision) > 0

        await behind.resync()  # its revision is below the compacted range: only a full reload can catch up
        assert values(behind) == {"app/a": b"2"} and behind.last_revision == writer.last_revision
        assert reloads == [(writer.last_revision, True)]


async def test_the_snapshot_file_follows_the_replica_and_is_owner_only(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "lkg" / "snapshot.json"
    async with await open_replica(sqlite_url, snapshot_file=str(path)) as replica:
        assert path.exists(), "written at start"
        await replica.put_keys([PutItem("app/a", b"\x00binary"), PutItem("other/x", b"not replicated")])
        await replica.check_once()
        loaded = snapshot_file.read(str(path))
        assert loaded == (replica.last_revision, replica.entries())
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert json.loads(path.read_text())["revision"] == replica.last_revision


def test_an_unreadable_snapshot_file_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert snapshot_file.read(str(tmp_path / "absent.json")) is None
    broken = tmp_path / "broken.json"
    broken.write_text('{"revision": 3, "entries": ["not an entry"]}')
    with caplog.at_level(logging.WARNING, logger="accord.replica"):
        assert snapshot_file.read(str(broken)) is None
    assert any("unreadable snapshot file" in r.getMessage() for r in caplog.records)


async def test_a_read_only_replica_refuses_writes_and_changes_nothing(sqlite_url: str, tmp_path: Path) -> None:
    async with await open_replica(sqlite_url) as replica:
        await replica.put_keys([PutItem("app/a", b"1")])
        replica.read_only = True  # what a start from a cached snapshot looks like
        for write in (
            replica.put_keys([PutItem("app/a", b"2")]),
            replica.delete_key("app/a"),
            replica.rollback_key("app/a", 1),
        ):
            with pytest.raises(ReadOnlyError):
                await write
        assert values(replica) == {"app/a": b"1"}
        assert (await replica.store.get("app/a")) == replica.entry("app/a")


async def test_apply_next_takes_only_the_next_revision_that_needs_nothing_else(sqlite_url: str) -> None:
    async with await open_replica(sqlite_url) as replica:
        heard: list[int] = []
        replica.on_bus_change(lambda change: heard.append(change.revision))
        start = replica.last_revision
        change = Change(revision=start + 1, key="app/a", op="put", version=1, value=b"1")
        assert not replica.apply_next(dataclasses.replace(change, revision=start + 2))  # a gap: nothing done
        assert not replica.apply_next(dataclasses.replace(change, key="acl/x"))  # authority: the store confirms it
        assert not replica.apply_next(dataclasses.replace(change, value=None, value_omitted=True))
        assert replica.last_revision == start and values(replica) == {}
        async with replica._lock:  # a resync or an own write in progress: it waits its turn
            assert not replica.apply_next(change)
        replica._early[start + 5] = dataclasses.replace(change, revision=start + 5)  # heard past a gap: it waits
        assert not replica.apply_next(change)
        replica._early.clear()
        assert replica.apply_next(change)
        assert replica.apply_next(Change(revision=start + 2, key="other/x", op="put", version=1, value=b"2"))
        assert not replica.apply_next(change)  # already applied
        assert values(replica) == {"app/a": b"1"} and replica.last_revision == start + 2
        assert heard == [start + 1, start + 2]
