"""Catalog, agent and health endpoints against a real `accord serve`, through the real py-consul client.

Statuses here are only what registration sets (the check runner is another part); every write the
server refuses must leave the catalog exactly as it was.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import consul
import httpx
import pytest
from packaging.version import Version

from tests.harness import AccordServer, PostgresServer, RedisServer, running
from tests.server.server_harness import create_token


@pytest.fixture(scope="module", params=["sqlite", "postgres_redis"])
def server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[AccordServer]:
    """One server per backend for the module: SQLite alone, and PostgreSQL with the Redis bus."""
    workdir: Path = tmp_path_factory.mktemp("catalog-server")
    if request.param == "sqlite":
        with running(AccordServer(f"sqlite:///{workdir}/accord.db", "", workdir, expect_token=True)) as srv:
            yield srv
        return
    pg: PostgresServer = request.getfixturevalue("pg_server")
    if not pg.is_running():
        pg.start()
    db_url = pg.create_database(f"catalog_{uuid.uuid4().hex[:8]}")
    with (
        running(RedisServer(tmp_path_factory.mktemp("catalog-redis"))) as redis,
        running(AccordServer(db_url, redis.url, workdir, expect_token=True)) as srv,
    ):
        yield srv


@pytest.fixture(scope="module")
def token(server: AccordServer) -> str:
    assert server.token is not None
    return server.token


@pytest.fixture(scope="module")
def c(server: AccordServer, token: str) -> consul.Consul:
    return consul.Consul(host="127.0.0.1", port=server.port, token=token)


@pytest.fixture(scope="module")
def http(server: AccordServer, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"X-Consul-Token": token}, timeout=60) as client:
        yield client


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def snapshot(http: httpx.Client) -> tuple[Any, Any]:
    services = http.get("/v1/agent/services").json()
    checks = http.get("/v1/agent/checks").json()
    return services, checks


# ----- service registration ---------------------------------------------------------------------


def test_register_with_http_tcp_ttl_checks_through_py_consul(c: consul.Consul, http: httpx.Client) -> None:
    svc = name("web")
    checks = [
        consul.Check.http("http://127.0.0.1:1/health", "10s", timeout="2s", deregister="30s"),
        consul.Check.tcp("127.0.0.1", 1, "0.5s"),
        consul.Check.ttl("15s"),
    ]
    assert c.agent.service.register(
        svc, service_id=svc, port=8080, tags=["a", "b"], meta={"m": "1"}, check=checks[0], extra_checks=checks[1:]
    )
    service = c.agent.services()[svc]
    assert service["Service"] == svc and service["Port"] == 8080 and service["Tags"] == ["a", "b"]
    assert service["Meta"] == {"m": "1"} and service["Weights"] == {"Passing": 1, "Warning": 1}
    agent_checks = c.agent.checks()
    mine = {cid: chk for cid, chk in agent_checks.items() if chk["ServiceID"] == svc}
    assert set(mine) == {f"service:{svc}:1", f"service:{svc}:2", f"service:{svc}:3"}
    first = mine[f"service:{svc}:1"]
    assert first["Type"] == "http" and first["Status"] == "critical"
    assert first["Name"] == f"Service '{svc}' check"
    assert first["Definition"]["Interval"] == "10s" and first["Definition"]["Timeout"] == "2s"
    assert first["Definition"]["DeregisterCriticalServiceAfter"] == "1m0s"  # raised to Consul's minimum
    assert first["Definition"]["HTTP"] == "http://127.0.0.1:1/health"
    assert mine[f"service:{svc}:2"]["Interval"] == "1s"  # raised to MinInterval
    assert mine[f"service:{svc}:3"]["Type"] == "ttl" and mine[f"service:{svc}:3"]["ServiceTags"] == ["a", "b"]
    # the catalog and health views see the same instance
    index, nodes = c.catalog.service(svc)
    assert [n["ServiceID"] for n in nodes] == [svc] and int(index) >= 1
    assert nodes[0]["ServiceTags"] == ["a", "b"] and isinstance(nodes[0]["TaggedAddresses"], dict)


def test_lowercase_and_snake_keys_and_single_check_id(http: httpx.Client) -> None:
    svc = name("snake")
    body = {
        "name": svc,
        "address": "10.0.0.5",
        "port": 9,
        "enable_tag_override": True,
        "tagged_addresses": {"lan": {"address": "10.0.0.5", "port": 9}},
        "check": {"HTTP": "http://x/", "interval": 10_000_000_000, "tls_skip_verify": True, "header": {"A": ["b"]}},
    }
    assert http.put("/v1/agent/service/register", json=body).status_code == 200
    service = http.get("/v1/agent/services").json()[svc]
    assert service["EnableTagOverride"] is True and service["Address"] == "10.0.0.5"
    assert service["TaggedAddresses"] == {"lan": {"Address": "10.0.0.5", "Port": 9}}
    check = http.get("/v1/agent/checks").json()[f"service:{svc}"]
    assert check["Definition"]["Interval"] == "10s" and check["Definition"]["TLSSkipVerify"] is True
    assert check["Definition"]["Header"] == {"A": ["b"]}


def test_reregistration_keeps_status_and_replace_existing_checks_removes_others(
    c: consul.Consul, http: httpx.Client
) -> None:
    svc = name("keep")
    two = [{"CheckID": "k1-" + svc, "ttl": "10s"}, {"CheckID": "k2-" + svc, "ttl": "10s", "Status": "passing"}]
    assert http.put("/v1/agent/service/register", json={"Name": svc, "Checks": two}).status_code == 200
    # k2 is passing now; re-registering it without a Status (which would mean critical) keeps passing
    assert c.agent.checks()["k2-" + svc]["Status"] == "passing"
    again = [{"CheckID": "k2-" + svc, "ttl": "20s"}]
    assert http.put("/v1/agent/service/register", json={"Name": svc, "Checks": again}).status_code == 200
    checks = c.agent.checks()
    assert checks["k2-" + svc]["Status"] == "passing"  # not reset to critical
    assert checks["k2-" + svc]["Definition"]["Interval"] == "0s" and checks["k1-" + svc]["Status"] == "critical"
    assert "k1-" + svc in checks  # kept without replace-existing-checks
    assert (
        http.put("/v1/agent/service/register", json={"Name": svc, "Tags": ["new"], "Checks": again}).status_code == 200
    )
    checks = c.agent.checks()
    assert checks["k1-" + svc]["ServiceTags"] == ["new"] and checks["k1-" + svc]["Status"] == "critical"
    assert c.agent.service.register(svc, check={"CheckID": "k2-" + svc, "ttl": "20s"}, replace_existing_checks=True)
    checks = c.agent.checks()
    assert "k1-" + svc not in checks and checks["k2-" + svc]["Status"] == "passing"


def test_deregister_service_removes_its_checks_and_unknown_is_404(c: consul.Consul, http: httpx.Client) -> None:
    svc = name("gone")
    assert c.agent.service.register(svc, check=consul.Check.ttl("10s"))
    assert f"service:{svc}" in c.agent.checks()
    assert c.agent.service.deregister(svc)
    assert svc not in c.agent.services() and f"service:{svc}" not in c.agent.checks()
    answer = http.put(f"/v1/agent/service/deregister/{svc}")
    assert answer.status_code == 404
    assert answer.text == f'Unknown service ID "{svc}". Ensure that the service ID is passed, not the service name.'
    answer = http.put("/v1/agent/check/deregister/nope-" + svc)
    assert answer.status_code == 404 and answer.text.startswith('Unknown check ID "nope-')


def test_check_register_and_its_rules(c: consul.Consul, http: httpx.Client) -> None:
    svc = name("chk")
    assert c.agent.service.register(svc)
    assert c.agent.check.register("mine", check=consul.Check.ttl("10s"), check_id="c-" + svc, service_id=svc)
    check = c.agent.checks()["c-" + svc]
    assert check["ServiceName"] == svc and check["Status"] == "critical" and check["Name"] == "mine"
    answer = http.put("/v1/agent/check/register", json={"Name": "x", "ServiceID": "missing-" + svc, "TTL": "10s"})
    assert answer.status_code == 404 and answer.text == f'ServiceID "missing-{svc}" does not exist'
    assert http.put("/v1/agent/check/register", json={"TTL": "10s"}).text == "Missing check name"
    assert c.agent.check.deregister("c-" + svc)
    assert "c-" + svc not in c.agent.checks()


BAD = [
    ("/v1/agent/service/register", b"{not json", 400, "Request decode failed"),
    ("/v1/agent/service/register", {"Port": 1}, 400, "Missing service name"),
    ("/v1/agent/service/register", {"Name": "{n}", "Check": {"Name": "x"}}, 400, "Invalid check: TTL must be > 0"),
    ("/v1/agent/service/register", {"Name": "{n}", "Check": {"HTTP": "http://x"}}, 400, "Invalid check: Interval"),
    ("/v1/agent/service/register", {"Name": "{n}", "Check": {"TCP": "x:1", "Interval": "10"}}, 400, "Request decode"),
    ("/v1/agent/service/register", {"Name": "{n}", "Check": {"Interval": "5s", "TTL": "5s"}}, 400, "Invalid check: I"),
    ("/v1/agent/service/register", {"Name": "{n}", "Check": {"grpc": "x:1", "Interval": "5s"}}, 400, "Invalid check"),
    ("/v1/agent/service/register", {"Name": "{n}", "Check": {"args": ["/bin/true"], "interval": "5s"}}, 500, "Scr"),
    ("/v1/agent/service/register", {"Name": "{n}", "Port": "80"}, 400, "Request decode failed"),
    (
        "/v1/agent/check/register",
        {"Name": "{n}", "TTL": "abc"},
        400,
        'Request decode failed: time: invalid duration "abc"',
    ),
    ("/v1/agent/check/register", {"Name": "{n}", "TTL": "5s", "Status": "ok"}, 400, "Bad check status"),
    ("/v1/catalog/register", {"Address": "1.2.3.4"}, 400, "Must provide node"),
]


@pytest.mark.parametrize(("path", "body", "status", "text"), BAD)
def test_bad_input_is_answered_as_consul_does_and_writes_nothing(
    http: httpx.Client, path: str, body: Any, status: int, text: str
) -> None:
    before = snapshot(http)
    n = name("bad")
    content = body if isinstance(body, bytes) else json.dumps(body).replace("{n}", n).encode()
    answer = http.put(path, content=content)
    assert answer.status_code == status, answer.text
    assert answer.text.startswith(text), answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    assert snapshot(http) == before


def test_other_datacenter_is_500(c: consul.Consul, http: httpx.Client) -> None:
    answer = http.put("/v1/agent/service/register?dc=dc2", json={"Name": name("dc")})
    assert answer.status_code == 500 and answer.text == "No path to datacenter"
    with pytest.raises(consul.ConsulException):
        c.catalog.services(dc="dc2")
    assert c.catalog.datacenters() == ["dc1"]


def test_ids_outside_the_store_grammar(http: httpx.Client) -> None:
    svc = name("odd")
    sid = f"{svc} a/b:c"
    body = {"Name": svc, "ID": sid, "Check": {"TTL": "10s"}}
    assert http.put("/v1/agent/service/register", json=body).status_code == 200
    assert sid in http.get("/v1/agent/services").json()
    assert f"service:{sid}" in http.get("/v1/agent/checks").json()
    entries = http.get(f"/v1/health/service/{svc}").json()
    assert [e["Service"]["ID"] for e in entries] == [sid]
    quoted = sid.replace(" ", "%20").replace("/", "%2F")
    assert http.put(f"/v1/agent/service/deregister/{quoted}").status_code == 200
    assert sid not in http.get("/v1/agent/services").json()
    assert f"service:{sid}" not in http.get("/v1/agent/checks").json()


# ----- listings and filters ---------------------------------------------------------------------


def test_agent_filters(http: httpx.Client) -> None:
    svc = name("flt")
    for i, tags in enumerate((["x"], ["y"])):
        body = {
            "Name": svc,
            "ID": f"{svc}-{i}",
            "Tags": tags,
            "Check": {"TTL": "10s", "Status": "passing" if i else ""},
        }
        assert http.put("/v1/agent/service/register", json=body).status_code == 200
    services = http.get("/v1/agent/services", params={"filter": f'Service == "{svc}" and "x" in Tags'}).json()
    assert list(services) == [f"{svc}-0"]
    services = http.get("/v1/agent/services", params={"filter": f'Service == "{svc}" or "nope" in Tags'}).json()
    assert set(services) == {f"{svc}-0", f"{svc}-1"}
    checks = http.get("/v1/agent/checks", params={"filter": f'ServiceName == "{svc}" and Status == "passing"'}).json()
    assert list(checks) == [f"service:{svc}-1"]
    assert http.get("/v1/agent/checks", params={"filter": 'Status === "x"'}).status_code == 400
    assert http.get("/v1/agent/checks", params={"filter": "Status =="}).status_code == 400


def test_agent_self_and_members(c: consul.Consul, http: httpx.Client) -> None:
    me = c.agent.self()
    assert set(me) == {"Member", "xDS", "Stats", "Config", "Coord", "DebugConfig", "Meta"}
    assert Version(me["Config"]["Version"]) >= Version("1.11")
    assert me["Config"]["Datacenter"] == "dc1" and me["Config"]["NodeName"] == "accord"
    assert all(value is None or isinstance(value, dict) for value in me.values())
    assert all(isinstance(v, str) for group in me["Stats"].values() for v in group.values())
    assert me["Stats"]["consul"]["leader_addr"]
    assert me["Member"] in c.agent.members()
    leader = http.get("/v1/status/leader")
    if leader.status_code == 200:  # the status routes are another part's; when present they must agree
        assert leader.json() == me["Stats"]["consul"]["leader_addr"]
    bogus = httpx.get(
        f"{str(http.base_url).rstrip('/')}/v1/agent/self", headers={"X-Consul-Token": "acc_not_a_real_token_at_all_x"}
    )
    assert bogus.status_code == 403 and bogus.text == "ACL not found"


def test_catalog_services_nodes_register_deregister(c: consul.Consul, http: httpx.Client) -> None:
    node, svc = name("node"), name("ext")
    index, services = c.catalog.services()
    assert services["consul"] == []
    assert c.catalog.register(
        node,
        "10.1.1.1",
        service={"Service": svc, "ID": svc, "Port": 1, "Tags": ["t2", "t1", "t2"]},
        check={"CheckID": "ext-" + svc, "Name": "ext", "Status": "passing", "ServiceID": svc},
    )
    index2, services = c.catalog.services(index=int(index), wait="30s")
    assert services[svc] == ["t1", "t2"] and int(index2) > int(index)
    # not the agent's service: the agent does not know it
    assert http.put(f"/v1/agent/service/deregister/{svc}").status_code == 404
    _, nodes = c.catalog.nodes()
    assert {n["Node"] for n in nodes} >= {"accord", node}
    assert all(isinstance(v, str) for n in nodes for v in n["TaggedAddresses"].values())
    _, found = c.catalog.node(node)
    assert found["Node"]["Address"] == "10.1.1.1" and list(found["Services"]) == [svc]
    assert c.catalog.node("no-such-" + node)[1] is None
    _, entries = c.health.service(svc)
    assert entries[0]["Node"]["Node"] == node
    assert {chk["CheckID"] for chk in entries[0]["Checks"]} == {"ext-" + svc, "serfHealth"}
    assert {chk["ServiceID"] for chk in entries[0]["Checks"]} == {svc, ""}
    assert c.catalog.deregister(node, service_id=svc)
    assert svc not in c.catalog.services()[1]
    assert "ext-" + svc not in {chk["CheckID"] for chk in c.health.state("any")[1]}
    assert c.catalog.deregister(node)
    assert node not in {n["Node"] for n in c.catalog.nodes()[1]}


def test_health_service_passing_tags_and_state(c: consul.Consul, http: httpx.Client) -> None:
    svc = name("hs")
    for i in range(3):
        status = "passing" if i < 2 else "warning"
        tags = ["blue", "x"] if i == 0 else ["blue"]
        body = {"Name": svc, "ID": f"{svc}-{i}", "Tags": tags, "Check": {"TTL": "10s", "Status": status}}
        assert http.put("/v1/agent/service/register", json=body).status_code == 200
    _, entries = c.health.service(svc)
    assert [e["Service"]["ID"] for e in entries] == [f"{svc}-0", f"{svc}-1", f"{svc}-2"]
    assert all(isinstance(v, str) for e in entries for v in e["Node"]["TaggedAddresses"].values())
    _, entries = c.health.service(svc, passing=True)
    assert [e["Service"]["ID"] for e in entries] == [f"{svc}-0", f"{svc}-1"]
    _, entries = c.health.service(svc, tag=["blue", "x"])
    assert [e["Service"]["ID"] for e in entries] == [f"{svc}-0"]
    entries = http.get(f"/v1/health/service/{svc}", params={"filter": '"x" not in Service.Tags'}).json()
    assert [e["Service"]["ID"] for e in entries] == [f"{svc}-1", f"{svc}-2"]
    assert http.get(f"/v1/health/service/{svc}", params={"filter": "Service.Tags =="}).status_code == 400
    assert http.get(f"/v1/health/service/{svc}", params={"passing": "maybe"}).status_code == 400
    _, warning = c.health.state("warning")
    assert f"service:{svc}-2" in {chk["CheckID"] for chk in warning}
    _, passing = c.health.state("passing")
    assert "serfHealth" in {chk["CheckID"] for chk in passing}
    assert http.get("/v1/health/state/bogus").status_code == 400
    _, checks = c.health.checks(svc)
    assert [chk["CheckID"] for chk in checks] == [f"service:{svc}-0", f"service:{svc}-1", f"service:{svc}-2"]
    _, node_checks = c.health.node("accord")
    assert "serfHealth" in {chk["CheckID"] for chk in node_checks}


def test_blocking_health_service_wakes_for_its_service_only(http: httpx.Client) -> None:
    watched, other = name("watched"), name("other")
    assert http.put("/v1/agent/service/register", json={"Name": watched}).status_code == 200
    first = http.get(f"/v1/health/service/{watched}")
    index = int(first.headers["X-Consul-Index"])
    assert http.put("/v1/agent/service/register", json={"Name": other}).status_code == 200
    # another service's registration does not move this query's index: a short wait times out unchanged
    unchanged = http.get(f"/v1/health/service/{watched}", params={"index": index, "wait": "1s"})
    assert int(unchanged.headers["X-Consul-Index"]) == index and len(unchanged.json()) == 1
    result: dict[str, httpx.Response] = {}

    def block() -> None:
        result["r"] = http.get(f"/v1/health/service/{watched}", params={"index": index, "wait": "60s"})

    thread = threading.Thread(target=block)
    thread.start()
    assert http.put("/v1/agent/service/register", json={"Name": watched, "ID": watched + "-2"}).status_code == 200
    thread.join(90)
    woke = result["r"]
    assert int(woke.headers["X-Consul-Index"]) > index
    assert {e["Service"]["ID"] for e in woke.json()} == {watched, watched + "-2"}
    # a deregistration (a tombstone) moves it too
    index = int(woke.headers["X-Consul-Index"])
    assert http.put(f"/v1/agent/service/deregister/{watched}-2").status_code == 200
    after = http.get(f"/v1/health/service/{watched}", params={"index": index, "wait": "30s"})
    assert int(after.headers["X-Consul-Index"]) > index and len(after.json()) == 1


# ----- ACLs -------------------------------------------------------------------------------------


def test_acl_refusals_and_filtered_listings(server: AccordServer, http: httpx.Client, token: str) -> None:
    svc, hidden = name("acl"), name("hidden")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as admin:
        limited = create_token(
            admin, name("tok"), [f"registry/service/{svc}=write", f"registry/check/service_3A{svc}=write"]
        )
    assert http.put("/v1/agent/service/register", json={"Name": hidden}).status_code == 200
    lc = consul.Consul(host="127.0.0.1", port=server.port, token=limited)
    assert lc.agent.service.register(svc, check=consul.Check.ttl("10s"))
    assert set(lc.agent.services()) == {svc}
    assert svc in lc.catalog.services()[1] and hidden not in lc.catalog.services()[1]
    with pytest.raises(consul.ACLPermissionDenied):
        lc.agent.service.register(hidden)
    with pytest.raises(consul.ACLPermissionDenied):
        lc.agent.service.deregister(hidden)
    denied = httpx.put(
        f"{server.url}/v1/agent/service/register",
        json={"Name": svc, "Check": {"CheckID": "zz", "TTL": "5s"}},
        headers={"X-Consul-Token": limited},
    )
    assert denied.status_code == 403 and denied.text.startswith("Permission denied")
    assert "zz" not in http.get("/v1/agent/checks").json()
    node = name("secret-node")
    assert http.put("/v1/catalog/register", json={"Node": node, "Address": "10.9.9.9"}).status_code == 200
    assert node not in {n["Node"] for n in lc.catalog.nodes()[1]}
    with pytest.raises(consul.ACLPermissionDenied):
        lc.catalog.node(node)
    with pytest.raises(consul.ACLPermissionDenied):
        lc.catalog.register(node, "10.9.9.8")
    assert http.get(f"/v1/catalog/node/{node}").json()["Node"]["Address"] == "10.9.9.9"
    assert http.put("/v1/catalog/deregister", json={"Node": node}).json() is True
    anonymous = httpx.get(f"{server.url}/v1/agent/services")
    assert anonymous.status_code == 200 and anonymous.json() == {}
    assert httpx.put(f"{server.url}/v1/agent/service/register", json={"Name": name("anon")}).status_code == 403
    assert hidden in http.get("/v1/agent/services").json()


def test_wrong_method_and_empty_answers(http: httpx.Client) -> None:
    answer = http.get("/v1/agent/service/register")
    assert answer.status_code == 405 and "PUT" in answer.headers.get("allow", "")
    svc = name("empty")
    answer = http.put("/v1/agent/service/register", json={"Name": svc})
    assert answer.status_code == 200 and answer.content == b"" and "content-type" not in answer.headers
    answer = http.get(f"/v1/health/service/{name('none')}")
    assert answer.json() == [] and int(answer.headers["X-Consul-Index"]) >= 1
    assert answer.headers["content-type"] == "application/json"
    assert http.get(f"/v1/catalog/service/{name('none')}").json() == []
