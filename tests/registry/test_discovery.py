"""`accord.registry`: resolve() and register_self() against a real `accord serve` (issue 9, item 7).

The pin in KV wins over the catalog, healthy instances are taken in turn, a watch drops a cached
answer the moment the pin or the healthy set changes (the TTL here is an hour, so only the watch can
explain a fresh answer), and a process that registers itself is healthy while it heartbeats and gone
when it leaves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import consul
import httpx
import pytest

from accord.core.errors import PermissionDeniedError, ServerUnreachableError, ServiceNotFoundError
from accord.registry import Discovery, register_self
from tests.config.procs_worker import eventually
from tests.harness import AccordServer, running
from tests.harness.ports import free_port
from tests.server.server_harness import create_token

HOUR = 3600.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AccordServer]:
    root: Path = tmp_path_factory.mktemp("discovery")
    with running(AccordServer(f"sqlite+aiosqlite:///{root}/accord.db", "", root / "server", expect_token=True)) as s:
        yield s


@pytest.fixture(scope="module")
def admin(server: AccordServer) -> consul.Consul:
    return consul.Consul(host="127.0.0.1", port=server.port, token=server.token)


@pytest.fixture
async def discovery(server: AccordServer) -> AsyncIterator[Discovery]:
    async with Discovery(server.url, server.token, ttl=HOUR) as found:
        yield found


def _register(admin: consul.Consul, name: str, sid: str, port: int, *, status: str = "passing") -> None:
    check = consul.Check.ttl("1h")
    admin.agent.service.register(name, service_id=sid, address="10.0.0.1", port=port, check=check)
    if status == "passing":
        admin.agent.check.ttl_pass(f"service:{sid}")
    elif status == "critical":
        admin.agent.check.ttl_fail(f"service:{sid}")


async def test_healthy_instances_in_turn_and_critical_ones_never(admin: consul.Consul, discovery: Discovery) -> None:
    _register(admin, "orders", "orders-1", 8001)
    _register(admin, "orders", "orders-2", 8002)
    _register(admin, "orders", "orders-3", 8003, status="critical")
    answers = [await discovery.resolve("orders") for _ in range(6)]
    assert set(answers) == {"http://10.0.0.1:8001", "http://10.0.0.1:8002"}
    assert answers[0] != answers[1] and answers[:2] == answers[2:4], "round robin, not a random pick"


async def test_a_kv_pin_wins_and_a_change_to_it_is_seen_without_waiting_for_the_ttl(
    admin: consul.Consul, discovery: Discovery
) -> None:
    _register(admin, "billing", "billing-1", 9001)
    assert await discovery.resolve("billing") == "http://10.0.0.1:9001"
    admin.kv.put("services/billing/url", "https://billing.internal")
    await _eventually_resolves(discovery, "billing", "https://billing.internal", "the pin to replace the catalog")
    admin.kv.put("services/billing/url", "https://billing-v2.internal")
    await _eventually_resolves(discovery, "billing", "https://billing-v2.internal", "a moved pin")
    admin.kv.delete("services/billing/url")
    await _eventually_resolves(discovery, "billing", "http://10.0.0.1:9001", "the catalog once the pin is gone")


async def test_an_instance_turning_critical_leaves_the_answer(admin: consul.Consul, discovery: Discovery) -> None:
    _register(admin, "search", "search-1", 7001)
    _register(admin, "search", "search-2", 7002)
    assert {await discovery.resolve("search") for _ in range(2)} == {"http://10.0.0.1:7001", "http://10.0.0.1:7002"}
    admin.agent.check.ttl_fail("service:search-2", notes="disk full")

    async def only_the_healthy_one() -> bool:
        return {await discovery.resolve("search") for _ in range(2)} == {"http://10.0.0.1:7001"}

    await eventually(only_the_healthy_one, "the critical instance to drop out of the cached answer", within=10)


async def test_no_healthy_instance_is_an_error_naming_the_service(admin: consul.Consul, discovery: Discovery) -> None:
    _register(admin, "ledger", "ledger-1", 6001, status="critical")
    with pytest.raises(ServiceNotFoundError, match=r"'ledger'.*services/ledger/url.*no healthy instance"):
        await discovery.resolve("ledger")
    with pytest.raises(ServiceNotFoundError, match="'never-registered'"):
        await discovery.resolve("never-registered")


async def test_register_self_heartbeats_past_its_ttl_and_deregisters_on_exit(
    server: AccordServer, admin: consul.Consul
) -> None:
    joined = register_self("worker", port=5005, address="10.0.0.9", ttl=1.0, addr=server.url, token=server.token)
    async with joined as me:
        assert me.check_id == f"service:{me.service_id}"
        _, nodes = admin.health.service("worker", passing=True)
        assert [n["Service"]["ID"] for n in nodes] == [me.service_id]
        _, checks = admin.health.checks("worker")
        assert [(c["CheckID"], c["Status"]) for c in checks] == [(me.check_id, "passing")]
        await asyncio.sleep(2.5)  # past two TTLs: only heartbeats can have kept the check passing
        assert admin.agent.checks()[me.check_id]["Status"] == "passing"
        _, nodes = admin.health.service("worker", passing=True)
        assert [n["Service"]["ID"] for n in nodes] == [me.service_id], "the heartbeat kept it passing"
    _, nodes = admin.health.service("worker")
    assert nodes == [], "leaving the block deregistered the instance"
    assert me.check_id not in admin.agent.checks()


async def test_errors_name_the_server_and_the_refusal(server: AccordServer) -> None:
    port = free_port()
    async with Discovery(f"127.0.0.1:{port}", "t", ttl=HOUR, watch=False) as nowhere:
        with pytest.raises(ServerUnreachableError, match=f"http://127.0.0.1:{port}"):
            await nowhere.resolve("orders")
    with server.admin() as http_admin:
        unrelated = create_token(http_admin, "discovery-unrelated", ["config/=read"])
    async with Discovery(server.url, unrelated, ttl=HOUR, watch=False) as refused:
        with pytest.raises(PermissionDeniedError, match="refused /v1/kv/services/orders/url"):
            await refused.resolve("orders")
    with pytest.raises(PermissionDeniedError, match="refused /v1/agent/service/register"):
        async with register_self("worker", port=1, addr=server.url, token=unrelated):
            pytest.fail("a refused registration must not enter the block")


async def test_a_refused_watch_backs_off_instead_of_spinning(server: AccordServer, admin: consul.Consul) -> None:
    """A token that may read the pin and the catalog once but whose watch is answered with an error must not
    hammer the server: the watch waits between failed attempts (here: the server is told the token is gone)."""
    with server.admin() as http_admin:
        reader = create_token(
            http_admin, "discovery-reader", ["kv/services/=read", "registry/service/=read", "registry/check/=read"]
        )
    _register(admin, "mail", "mail-1", 2525)
    requests: list[httpx.Request] = []

    async def count(request: httpx.Request) -> None:
        requests.append(request)

    async with Discovery(server.url, reader, ttl=HOUR) as found:
        found._http.event_hooks["request"].append(count)
        assert await found.resolve("mail") == "http://10.0.0.1:2525"
        with server.admin() as http_admin:
            assert http_admin.delete("/api/tokens/discovery-reader").status_code in (200, 204)
        admin.kv.put("services/mail/url", "https://mail.internal")  # wakes both watches into a 403
        await eventually(lambda: len(requests) >= 4, "the watches to be refused", within=10)
        seen = len(requests)
        await asyncio.sleep(1.0)
        assert len(requests) - seen <= 4, f"{len(requests) - seen} refused watch requests in one second"


async def _eventually_resolves(discovery: Discovery, name: str, want: str, what: str) -> None:
    async def resolved() -> bool:
        return await discovery.resolve(name) == want

    await eventually(resolved, what, within=10)
