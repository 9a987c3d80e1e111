"""A private 3-node Redis Cluster (no replicas) whose nodes a test may kill and restart.

Each node is a foreground redis-server with ``cluster-enabled yes``, its own ``cluster-port`` (so the
bus port is free too, not port + 10000 by luck) and its own ``nodes.conf``; ``redis-cli --cluster
create`` assigns the slots. A restarted node keeps its ``nodes.conf`` (identity and slots) and comes
back empty, like a restarted single Redis. ``cluster-require-full-coverage no`` keeps the other
nodes' slots served while one node is down, as a production cluster with that setting would.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import redis

from tests.harness.ports import free_port
from tests.harness.process import ServerError
from tests.harness.redis_server import RedisServer
from tests.harness.waiting import wait_until

NODES = 3
NODE_TIMEOUT_MS = 2000


class RedisClusterNode(RedisServer):
    name: ClassVar[str] = "redis-cluster-node"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.bus_port = free_port()

    def prepare(self) -> None:
        super().prepare()
        settings = [
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            f"cluster-port {self.bus_port}",
            f"cluster-node-timeout {NODE_TIMEOUT_MS}",
            "cluster-require-full-coverage no",
            "",
        ]
        with (self.workdir / "redis.conf").open("a") as conf:
            conf.write("\n".join(settings))

    def cluster_state(self) -> str:
        try:
            with redis.Redis(port=self.port, socket_timeout=1.0) as client:
                return str(client.cluster("INFO").get("cluster_state", ""))
        except (redis.RedisError, OSError):
            return ""


class RedisCluster:
    """Three nodes, slots assigned, every node saying ``cluster_state:ok`` before ``start`` returns."""

    def __init__(self, workdir: Path, nodes: int = NODES) -> None:
        self.nodes = [RedisClusterNode(workdir / f"node-{index}") for index in range(nodes)]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    def start(self) -> RedisCluster:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise ServerError("cannot create a Redis Cluster: executable 'redis-cli' not found")
        for node in self.nodes:
            node.launch()
        for node in self.nodes:
            node.wait_healthy()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        create = [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"]
        done = subprocess.run(create, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise ServerError(f"redis-cli --cluster create failed ({done.returncode}): {done.stdout}{done.stderr}")
        self.wait_ok()
        return self

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Every running node reports cluster_state:ok and knows every other node's slots."""
        wait_until(
            lambda: all(node.cluster_state() == "ok" for node in self.nodes if node.is_running()),
            timeout=timeout,
            what=f"the Redis Cluster on ports {self.ports} to reach cluster_state:ok",
        )

    def kill(self, index: int) -> None:
        self.nodes[index].kill()

    def restart(self, index: int) -> None:
        """Start a killed (or running) node again: empty, same identity and slots; waits for cluster_state:ok."""
        node = self.nodes[index]
        if node.is_running():
            node.kill()
        node.start()
        self.wait_ok()

    def flush(self) -> None:
        for node in self.nodes:
            with redis.Redis(port=node.port) as client:
                client.flushall()

    def all_keys(self) -> list[bytes]:
        """Every key on every node."""
        found: list[bytes] = []
        for node in self.nodes:
            with redis.Redis(port=node.port) as client:
                found += list(client.scan_iter(count=1000))
        return found

    def keyslot(self, key: bytes | str) -> int:
        with redis.Redis(port=self.nodes[0].port) as client:
            return int(client.cluster("KEYSLOT", key))

    def close(self) -> None:
        for node in self.nodes:
            node.close()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def cluster_url(redis_cluster: RedisCluster) -> str:
    """Restarts any node an earlier test killed and empties every node, so tests cannot see each other."""
    for index, node in enumerate(redis_cluster.nodes):
        if not node.is_running():
            redis_cluster.restart(index)
    redis_cluster.flush()
    return redis_cluster.url
