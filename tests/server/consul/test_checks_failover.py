"""A check keeps running when the replica that ran it is killed: two `accord serve` on one PostgreSQL + Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import AccordServer, running, wait_until
from tests.server.consul.checks_harness import CheckTarget, Store, check_doc

TAKEOVER_S = 45.0  # lease TTL 10 s + one renewal, generously: the machine is shared


@pytest.fixture
def target(tmp_path: Path) -> Iterator[CheckTarget]:
    with running(CheckTarget(tmp_path / "target")) as process:
        yield process


def _leader(server: AccordServer) -> str:
    answer = httpx.get(f"{server.url}/v1/status/leader", timeout=10)
    assert answer.status_code == 200, answer.text
    leader: str = answer.json()
    return leader


def _status(store: Store, check_id: str, status: str) -> bool:
    return store.status(check_id) == status


def test_a_check_keeps_running_when_its_replica_is_sigkilled(
    pg_url: str, redis_url: str, tmp_path: Path, target: CheckTarget
) -> None:
    servers = [AccordServer(pg_url, redis_url, tmp_path / name) for name in "ab"]
    addresses = {f"127.0.0.1:{server.port}": server for server in servers}
    try:
        for server in servers:
            server.start()
        leader = wait_until(
            lambda: (lead := _leader(servers[0])) and lead == _leader(servers[1]) and lead,
            timeout=TAKEOVER_S,
            what="both replicas naming one leader",
        )
        assert leader in addresses
        peers = wait_until(
            lambda: (p := httpx.get(f"{servers[1].url}/v1/status/peers").json()) == sorted(addresses) and p,
            what="both replicas among the peers",
        )
        assert leader in peers

        store = Store(pg_url, redis_url)
        store.register(check_doc("fo-http", "http", HTTP=target.target("fo"), Interval=1.0))
        wait_until(lambda: _status(store, "fo-http", "passing"), timeout=TAKEOVER_S, what="passing on the first leader")

        addresses[leader].kill()
        survivor = next(server for address, server in addresses.items() if address != leader)
        new_leader = f"127.0.0.1:{survivor.port}"
        wait_until(
            lambda: _leader(survivor) == new_leader,
            timeout=TAKEOVER_S,
            what="the survivor taking the lease",
            explain=lambda: survivor.logs()[-3000:],
        )

        target.set("fo", 500)
        wait_until(lambda: _status(store, "fo-http", "critical"), timeout=TAKEOVER_S, what="critical after failover")
        target.set("fo", 200)
        wait_until(lambda: _status(store, "fo-http", "passing"), timeout=TAKEOVER_S, what="passing again")
        wait_until(
            lambda: httpx.get(f"{survivor.url}/v1/status/peers").json() == [new_leader],
            timeout=TAKEOVER_S,
            what="the killed replica gone from the peers",
        )
    finally:
        for server in servers:
            server.close()


def test_a_stopped_leader_hands_over_at_once(pg_url: str, redis_url: str, tmp_path: Path) -> None:
    """A graceful stop releases the lease, so the other replica leads within one renewal, not one TTL."""
    servers = [AccordServer(pg_url, redis_url, tmp_path / name) for name in "ab"]
    addresses = {f"127.0.0.1:{server.port}": server for server in servers}
    try:
        for server in servers:
            server.start()
        leader = wait_until(lambda: _leader(servers[1]), timeout=TAKEOVER_S, what="a leader")
        addresses[leader].stop()
        survivor = next(server for address, server in addresses.items() if address != leader)
        wait_until(lambda: _leader(survivor) == f"127.0.0.1:{survivor.port}", timeout=9.0, what="the survivor leading")
    finally:
        for server in servers:
            server.close()
