"""The cluster fixture itself: three nodes own all slots, and a killed node comes back empty with its slots."""

from __future__ import annotations

import redis
from redis.cluster import RedisCluster as SyncCluster

from tests.harness.redis_cluster import RedisCluster


def test_three_nodes_serve_every_slot(redis_cluster: RedisCluster, cluster_url: str) -> None:
    with redis.Redis(port=redis_cluster.ports[0]) as client:
        info = client.cluster("INFO")
        assert info["cluster_state"] == "ok"
        assert int(info["cluster_slots_assigned"]) == 16384
        assert int(info["cluster_known_nodes"]) == 3


def test_a_killed_node_restarts_empty_with_its_slots(redis_cluster: RedisCluster, cluster_url: str) -> None:
    client = SyncCluster(host="127.0.0.1", port=redis_cluster.ports[0])
    try:
        client.set("k", "v")
        owner = client.get_node_from_key("k")
        index = redis_cluster.ports.index(owner.port)
        redis_cluster.kill(index)
        redis_cluster.restart(index)
        assert client.get("k") is None
        client.set("k", "w")
        assert client.get("k") == b"w"
    finally:
        client.close()
