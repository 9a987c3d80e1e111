"""accord on a real 3-node Redis Cluster: the URL, the value cache, config propagation over the Redis bus,
and every key a deployment writes staying in its slot group (docs/redis-cluster.md)."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

import accord
from accord.bus.auth import BusAuth
from accord.bus.redis_cache import RedisValueCache
from accord.bus.redis_conn import redis_client, validate_redis_url
from accord.cache import open_cache
from accord.config.reseal import ConfigSecrets
from accord.core.errors import InputError
from accord.core.redis_keys import DEPLOYMENT_POINTER_PREFIX
from accord.events.keys import EventKeys
from accord.keys.rotate import invalidate_caches
from accord.store.kv import SqlKVStore
from accord.store.types import Entry
from accord.vault import Vault
from accord.vault.reseal import VaultOriginals
from tests.config.procs_worker import Knobs, eventually
from tests.harness.redis_cluster import RedisCluster

TEXT = "ping user7@example.com from arn:aws:eks:us-east-1:123456789012:cluster/prod and 10.1.2.3"


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[SqlKVStore]:
    async with await SqlKVStore.from_url(sqlite_url) as opened:
        yield opened


def test_a_cluster_url_is_checked_before_connecting() -> None:
    validate_redis_url("redis+cluster://127.0.0.1:7000,127.0.0.1:7001/0")
    validate_redis_url("rediss+cluster://user:pw@node-a:7000")
    with pytest.raises(InputError, match="database 0 only; drop '/3'") as refused:
        validate_redis_url("redis+cluster://:s3cret@127.0.0.1:7000/3")
    assert "s3cret" not in str(refused.value)
    with pytest.raises(InputError, match="host:port"):
        validate_redis_url("redis+cluster://127.0.0.1")
    with pytest.raises(InputError, match="must start with"):
        validate_redis_url("cluster://127.0.0.1:7000")


async def test_the_factory_makes_a_cluster_client_for_a_cluster_url(cluster_url: str) -> None:
    client = redis_client(cluster_url)
    try:
        assert isinstance(client, aioredis.RedisCluster)
        await client.set("a", "1")
        await client.set("b", "2")  # "a" and "b" live on different nodes
        assert await client.get("a") == b"1" and await client.get("b") == b"2"
        assert {node.port for node in client.get_primaries()} == {int(p.rsplit(":", 1)[1]) for p in _hosts(cluster_url)}
    finally:
        await client.aclose()


async def test_the_value_cache_works_on_a_cluster(store: SqlKVStore, cluster_url: str) -> None:
    client = redis_client(cluster_url)
    cache = RedisValueCache(client, BusAuth(store))
    try:
        first = await store.put("k/a", b"1")
        await cache.refresh(store, 0)  # rebuild: a MULTI over the values hash, the pending set and the marker
        second = await store.put("k/b", b"2")
        await cache.apply(second, await store.get("k/b"))  # the APPLY_CHANGE script over the three keys
        deleted = await store.delete("k/a")
        await cache.apply(deleted, None)
        loaded = await cache.load()
        assert loaded is not None and loaded[0] == deleted.revision > first.revision
        assert _rows(loaded[1]) == _rows((await store.snapshot())[1])
    finally:
        await client.aclose()


async def test_config_changes_travel_over_the_redis_bus_on_a_cluster(tmp_path: Path, cluster_url: str) -> None:
    db_url = f"sqlite:///{tmp_path}/shared.db"
    # Polling an hour apart: only the Redis bus can bring the change to the reader within the test.
    options = {"groups": [Knobs], "poll_interval": 3600.0, "check_interval": 3600.0, "announce": False}
    async with (
        await accord.connect(db_url, cluster_url, **options) as writer,  # type: ignore[arg-type]
        await accord.connect(db_url, cluster_url, **options) as reader,  # type: ignore[arg-type]
    ):
        await eventually(lambda: reader.status().bus == "redis" and not reader.status().bus_degraded, "redis bus up")
        seen: list[object] = []
        reader.on_change("knobs.", lambda change: seen.append(change.new))
        await writer.set("knobs.level", 7)
        await eventually(lambda: 7 in seen, "the reader to hear knobs.level over the cluster")
        assert reader.get("knobs.level") == 7
        assert not reader.status().fallback_active


async def test_every_key_obeys_the_slot_groups(pg_url: str, redis_cluster: RedisCluster, cluster_url: str) -> None:
    """Write through config (bus, value cache), the vault and the event keys, then check every key's slot."""
    async with await accord.connect(pg_url, cluster_url, groups=[Knobs], announce=False) as cfg:
        await cfg.set("knobs.level", 3)
        await eventually(lambda: _cache_built(redis_cluster), "the value cache to be rebuilt on the cluster")
        keys = await BusAuth(cfg.store).keys()
    async with await Vault.connect(pg_url, cluster_url, sweep=False) as vault:
        await vault.mask(TEXT)
        await vault.mask(TEXT, scope="tenant:b")
        masked = await vault.mask(TEXT)
        assert await vault.unmask(masked.text) == TEXT
    events = EventKeys.of(keys)
    with (
        redis.RedisCluster(host="127.0.0.1", port=redis_cluster.ports[0]) as client,
        client.pipeline(transaction=True) as pipe,
    ):
        pipe.xadd(events.dlq, {b"e": b"{}"}).xadd(events.stream, {b"e": b"{}"})  # the DLQ replay's MULTI
        pipe.execute()

    written = sorted(key.decode() for key in redis_cluster.all_keys())
    by_group: dict[str, set[int]] = collections.defaultdict(set)
    for key in written:
        if key.startswith(DEPLOYMENT_POINTER_PREFIX):
            continue
        assert keys.owns(key), f"{key} is outside the deployment's namespace"
        assert key.startswith(f"accord:{{{keys.deployment_id}:"), f"{key} has no slot group"
        group = key.split("}", 1)[0] + "}"
        assert redis_cluster.keyslot(key) == redis_cluster.keyslot(group)
        by_group[group].add(redis_cluster.keyslot(key))
    expected = {f"accord:{{{keys.deployment_id}:{name}}}" for name in ("cache", "vault", "events")}
    assert set(by_group) == expected, written
    assert all(len(slots) == 1 for slots in by_group.values()), by_group
    assert keys.cache_values in written and any(key.startswith(keys.sequence_prefix) for key in written)
    assert keys.vault_scope("tenant:b")[0] in written


def _cache_built(cluster: RedisCluster) -> bool:
    return any(key.endswith(b":cache}:revision") for key in cluster.all_keys())


def _rows(entries: list[Entry]) -> dict[str, tuple[bytes, int, int]]:
    return {e.key: (e.value, e.version, e.mod_revision) for e in entries}


def _hosts(url: str) -> list[str]:
    return url.split("://", 1)[1].split("/", 1)[0].split(",")


async def test_the_bus_comes_back_after_its_node_is_killed(
    tmp_path: Path, redis_cluster: RedisCluster, cluster_url: str
) -> None:
    db_url = f"sqlite:///{tmp_path}/shared.db"
    options = {"groups": [Knobs], "poll_interval": 3600.0, "check_interval": 3600.0, "announce": False}
    async with (
        await accord.connect(db_url, cluster_url, **options) as writer,  # type: ignore[arg-type]
        await accord.connect(db_url, cluster_url, **options) as reader,  # type: ignore[arg-type]
    ):
        await eventually(lambda: not reader.status().bus_degraded, "redis bus up")
        seen: list[object] = []
        reader.on_change("knobs.", lambda change: seen.append(change.new))
        subscribed = _subscribed(redis_cluster)
        assert subscribed, "no node holds the bus's subscriptions"
        owner = subscribed[0]
        redis_cluster.kill(owner)  # the node the listeners are subscribed on
        await asyncio.sleep(0.5)
        redis_cluster.restart(owner)
        await eventually(lambda: not reader.status().bus_degraded, "the bus to reconnect", within=60)

        async def heard() -> bool:
            await writer.set("knobs.counter", len(seen) + 1)
            await asyncio.sleep(0.2)
            return bool(seen)

        await eventually(heard, "a change heard over the cluster after the node came back", within=60)
        assert _subscribed(redis_cluster), "the listeners subscribed again"


def _subscribed(cluster: RedisCluster) -> list[int]:
    """The indexes of the nodes holding a client subscribed to a channel."""
    found = []
    for index, node in enumerate(cluster.nodes):
        if node.is_running():
            with redis.Redis(port=node.port) as client:
                if any(int(entry.get("sub", 0)) for entry in client.client_list()):
                    found.append(index)
    return found


async def test_the_app_cache_works_on_a_cluster(cluster_url: str) -> None:
    cache = await open_cache(backend="redis", redis_url=cluster_url, namespace="sessions", deployment_id="d1")
    try:
        for n in range(20):  # keys spread over the three nodes
            await cache.set(f"user/{n}", {"n": n})
        assert [await cache.get(f"user/{n}") for n in range(20)] == [{"n": n} for n in range(20)]
        assert await cache.delete("user/3") and await cache.get("user/3") is None
    finally:
        await cache.aclose()


async def test_a_key_rotation_drops_the_vault_and_cache_copies_on_every_node(
    pg_url: str, redis_cluster: RedisCluster, cluster_url: str
) -> None:
    async with await accord.connect(pg_url, cluster_url, groups=[Knobs], announce=False) as cfg:
        await cfg.set("knobs.level", 3)
        await eventually(lambda: _cache_built(redis_cluster), "the value cache to be rebuilt on the cluster")
        keys = await BusAuth(cfg.store).keys()
    async with await Vault.connect(pg_url, cluster_url, sweep=False) as vault:
        await vault.mask(TEXT)
    assert any(key.startswith(keys.vault_prefix.encode()) for key in redis_cluster.all_keys())
    done = await invalidate_caches(cluster_url, [ConfigSecrets(), VaultOriginals()], keys)
    assert sorted(done) == ["config", "vault"]
    left = [key.decode() for key in redis_cluster.all_keys()]
    assert not [key for key in left if key.startswith(keys.vault_prefix)], left
    assert keys.cache_revision not in left
