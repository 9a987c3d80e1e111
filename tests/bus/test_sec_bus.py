"""The bus grants nothing (issue 8, item 1): namespaced by a deployment id from the database, signed with a key
from the database, authority entries applied as the database has them, and a replica ahead of its database resyncs.

All against one real redis-server shared by two deployments, with real SQLite / PostgreSQL databases.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

import accord
from accord.bus.auth import BusAuth
from accord.bus.wire import encode_change
from accord.replica.replica import Replica
from accord.store.kv import SqlKVStore
from accord.store.types import Change, PutItem
from tests.bus.deployment import redis_keys
from tests.config.procs_worker import Knobs, eventually

QUIET = 60.0  # check interval: nothing but the bus can carry a change within these tests


def on_db(redis_url: str, number: int) -> str:
    return redis_url.rsplit("/", 1)[0] + f"/{number}"


@pytest.fixture
async def replica(pg_url: str, redis_url: str) -> AsyncIterator[Replica]:
    opened = await Replica.from_url(
        pg_url, redis_url, prefixes=["acl/", "config/", "schema/"], actor="t", check_interval=QUIET
    )
    assert await opened.wait_connected(10)
    try:
        yield opened
    finally:
        await opened.aclose()


async def test_two_deployments_on_one_redis_server_never_see_each_other(tmp_path: Path, redis_url: str) -> None:
    first, second = f"sqlite:///{tmp_path}/one.db", f"sqlite:///{tmp_path}/two.db"
    async with (
        await accord.connect(first, on_db(redis_url, 1), groups=[Knobs], check_interval=QUIET) as a,
        await accord.connect(second, on_db(redis_url, 2), groups=[Knobs], check_interval=QUIET) as b,
        await accord.connect(second, on_db(redis_url, 2), groups=[Knobs], check_interval=QUIET) as b_peer,
    ):
        for cfg in (a, b, b_peer):
            assert await cfg.replica.wait_connected(10) and cfg.status().bus == "redis"
        assert (await a.store.deployment()).id != (await b.store.deployment()).id
        await a.set("knobs.level", 5)
        await b.set("knobs.name", "from-b")
        await eventually(lambda: b_peer.knobs.name == "from-b", "b's own peer to hear b over redis (the control)")
        await b_peer.set("knobs.level", 9)
        await eventually(lambda: b.knobs.level == 9, "b to hear its peer")
        assert a.knobs.level == 5 and a.knobs.name == "start"
        assert b.knobs.level == 9 and b_peer.knobs.level == 9, "a's write never reached the other deployment"
        assert a.status().bus_rejected == b.status().bus_rejected == 0  # not even as a message to drop
        async with aioredis.Redis.from_url(redis_url) as raw:
            channels = sorted(c.decode() if isinstance(c, bytes) else c for c in await raw.pubsub_channels("accord:*"))
        assert channels == sorted({(await redis_keys(cfg.store)).changes_channel for cfg in (a, b)})


async def forged(replica: Replica, key: str, value: bytes, *, mac: str | None) -> str:
    """A message on the deployment's real channel (anyone can list channels) for the next revision."""
    body = encode_change(Change(replica.last_revision + 1, key, "put", 1, value), max_bytes=65536)
    return body if mac is None else f"a1.{mac}.{body}"


@pytest.mark.parametrize("mac", [None, "0" * 64], ids=["unsigned", "wrong-hmac"])
async def test_a_forged_publish_of_a_token_or_a_setting_applies_nothing_and_is_counted(
    replica: Replica, redis_url: str, mac: str | None
) -> None:
    token = json.dumps({"name": "evil", "rules": ["=write"], "reveal_secrets": True}).encode()
    channel = (await redis_keys(replica.store)).changes_channel
    async with aioredis.Redis.from_url(redis_url) as raw:
        for key, value in [("acl/tokens/evil", token), ("config/knobs/level", b"666")]:
            assert await raw.publish(channel, await forged(replica, key, value, mac=mac)) == 1
    await eventually(lambda: replica.status().bus_rejected == 2, "both forgeries to be dropped and counted")
    assert replica.entry("acl/tokens/evil") is None and replica.entry("config/knobs/level") is None
    assert replica.last_revision == 0, "a forged revision is not believed either"


async def test_a_message_at_or_below_the_applied_revision_is_dropped_unread(replica: Replica, redis_url: str) -> None:
    """A receiver's own writes come back on the bus: it drops them, and any replay or forgery it already has,
    without verifying or parsing them; only a newer revision is read (and, unsigned, rejected and counted)."""
    mine = await replica.put_keys([PutItem("config/knobs/level", b"1")])
    applied = replica.last_revision
    assert applied == mine[-1].revision
    channel = (await redis_keys(replica.store)).changes_channel
    stale = encode_change(Change(applied, "config/knobs/level", "put", 9, b"666"), max_bytes=65536)
    fresh = encode_change(Change(applied + 1, "config/knobs/level", "put", 9, b"666"), max_bytes=65536)
    marker = await replica.store.put("config/knobs/name", b"marker")  # committed, announced below
    auth = BusAuth(replica.store)
    async with aioredis.Redis.from_url(redis_url) as raw:
        for message in (f"a1.{'0' * 64}.{stale}", f"a1.{'0' * 64}.{fresh}"):
            assert await raw.publish(channel, message) == 1
        await raw.publish(channel, await auth.seal(encode_change(marker, max_bytes=65536)))
    # One listener reads the channel in order: once the marker is applied, both forgeries have been handled.
    await eventually(lambda: replica.entry("config/knobs/name") is not None, "the signed marker to be applied")
    assert replica.status().bus_rejected == 1, "the stale message was read (and rejected) rather than dropped unread"
    entry = replica.entry("config/knobs/level")
    assert entry is not None and entry.value == b"1" and replica.last_revision == marker.revision


async def test_a_signed_token_entry_is_applied_as_the_database_has_it(replica: Replica) -> None:
    """Even a correctly signed message is only a notification for acl/ and schema/ keys: the value comes from the DB."""
    stored = await replica.store.put("acl/tokens/ci", b'{"rules":["config/=read"]}')  # committed, not announced
    lie = Change(stored.revision, stored.key, "put", stored.version, b'{"rules":["=write"]}', actor="liar")
    auth = BusAuth(replica.store)
    channel = (await auth.keys()).changes_channel
    async with aioredis.Redis.from_url(replica._propagation.bus.primary.url) as raw:  # type: ignore[attr-defined]
        await raw.publish(channel, await auth.seal(encode_change(lie, max_bytes=65536)))
    await eventually(lambda: replica.entry("acl/tokens/ci") is not None, "the announced token to arrive")
    entry = replica.entry("acl/tokens/ci")
    assert entry is not None and entry.value == stored.value and entry.updated_by == stored.actor


async def test_a_replica_ahead_of_its_restored_database_reloads_from_it(tmp_path: Path) -> None:
    path = tmp_path / "accord.db"
    url = f"sqlite:///{path}"
    async with await accord.connect(url, "", groups=[Knobs], check_interval=0.1) as cfg:
        await cfg.set("knobs.level", 1)
        backup = tmp_path / "backup.db"
        await _copy_sqlite(path, backup)
        await cfg.set("knobs.level", 2)
        await cfg.set("knobs.name", "after-backup")
        ahead = cfg.last_revision
        await _copy_sqlite(backup, path)  # the database is restored: it is now behind this process
        async with await SqlKVStore.from_url(url) as raw:
            assert await raw.current_revision() < ahead
        await eventually(lambda: cfg.knobs.level == 1, "the replica to reload the restored database")
        assert cfg.knobs.name == "start"
        assert cfg.last_revision < ahead
        await cfg.set("knobs.level", 3)  # and it follows the database from there
        await asyncio.sleep(0.3)
        assert cfg.knobs.level == 3


async def _copy_sqlite(source: Path, target: Path) -> None:
    """On a thread, bounded: sqlite3's backup retries a busy database forever inside C, so run on this event
    loop it would wait for a lock that only this loop (the replica's poll) can release, and hang the run."""

    def copy() -> None:
        with sqlite3.connect(source, timeout=5) as src, sqlite3.connect(target, timeout=5) as dst:
            src.backup(dst, sleep=0.01)

    async with asyncio.timeout(30):
        await asyncio.to_thread(copy)
