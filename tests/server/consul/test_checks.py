"""Health checks run by a real `accord serve` against real targets: HTTP, TCP, TTL, deregister-after, status.

Checks are registered by writing their entries the way the catalog will (tests/server/consul/checks_harness.py);
after the catalog routes are merged these tests can register through py-consul instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import consul  # type: ignore[import-untyped]
import httpx
import pytest

from tests.harness import AccordServer, AccordServers, running, wait_until
from tests.server.consul.checks_harness import (
    CheckTarget,
    Listener,
    Store,
    check_doc,
    check_key,
    service_doc,
    service_key,
)

CHECK_TIMEOUT_S = 30.0  # generous: the machine is shared, and a first probe may wait one interval


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CheckTarget]:
    with running(CheckTarget(tmp_path_factory.mktemp("target"))) as process:
        yield process


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('db')}/accord.db"


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AccordServer]:
    process = AccordServer(
        db_url, "", tmp_path_factory.mktemp("serve"), expect_token=True, env={"ACCORD_CHECK_REAP_INTERVAL": "1"}
    )
    with running(process):
        yield process


@pytest.fixture(scope="module")
def store(server: AccordServer, db_url: str) -> Store:
    return Store(db_url, "")


def _doc_matches(store: Store, check_id: str, status: str) -> dict[str, object] | None:
    doc = store.check(check_id)
    return doc if doc is not None and doc["Status"] == status else None


def wait_status(store: Store, check_id: str, status: str, server: AccordServer | None = None) -> dict[str, object]:
    return wait_until(
        lambda: _doc_matches(store, check_id, status),
        timeout=CHECK_TIMEOUT_S,
        what=f"check {check_id} {status}",
        explain=(lambda: f"check: {store.check(check_id)}") if server is None else (lambda: server.logs()[-3000:]),
    )


def test_status_leader_and_peers_name_the_server(server: AccordServer) -> None:
    address = f"127.0.0.1:{server.port}"
    leader = wait_until(lambda: httpx.get(f"{server.url}/v1/status/leader").json(), what="a leader")
    assert leader == address
    answer = httpx.get(f"{server.url}/v1/status/peers")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.json() == [address]
    c = consul.Consul(host="127.0.0.1", port=server.port)
    assert c.status.leader() == address
    assert c.status.peers() == [address]


def test_http_check_follows_its_target(server: AccordServer, store: Store, target: CheckTarget) -> None:
    url = target.target("web")
    store.register(check_doc("web-http", "http", HTTP=url, Interval=1.0, Header={"X-Probe": ["yes"]}))
    doc = wait_status(store, "web-http", "passing")
    assert doc["Output"] == f"HTTP GET {url}: 200 OK Output: ok"
    assert doc["CriticalSince"] is None
    last = target.hits("web")["last"]
    assert last["headers"]["User-Agent"] == "Consul Health Check"
    assert last["headers"]["Accept"] == "text/plain, text/*, */*"
    assert last["headers"]["X-Probe"] == "yes"

    target.set("web", 500)
    doc = wait_status(store, "web-http", "critical")
    assert str(doc["Output"]).startswith(f"HTTP GET {url}: 500 Internal Server Error Output: ")
    assert doc["CriticalSince"], "entering critical records when"

    target.set("web", 200)
    doc = wait_status(store, "web-http", "passing")
    assert doc["CriticalSince"] is None

    target.set("web", 429)
    doc = wait_status(store, "web-http", "warning")
    assert "429 Too Many Requests" in str(doc["Output"])


def test_http_check_method_body_and_refused_connection(server: AccordServer, store: Store, target: CheckTarget) -> None:
    store.register(check_doc("post-http", "http", HTTP=target.target("post"), Method="POST", Body="hi", Interval=1.0))
    wait_status(store, "post-http", "passing")
    last = target.hits("post")["last"]
    assert (last["method"], last["body"]) == ("POST", "hi")

    with Listener() as closed:
        dead = f"http://{closed.address}/"
    store.register(check_doc("dead-http", "http", HTTP=dead, Interval=1.0, status="passing"))
    doc = wait_status(store, "dead-http", "critical")
    assert doc["Output"] == f'Get "{dead}": connect: connection refused'


def test_changed_and_removed_checks_are_picked_up(server: AccordServer, store: Store, target: CheckTarget) -> None:
    store.register(check_doc("moving", "http", HTTP=target.target("old"), Interval=1.0))
    wait_status(store, "moving", "passing")
    target.set("new", 500)
    store.register(check_doc("moving", "http", HTTP=target.target("new"), Interval=1.0, status="passing"))
    doc = wait_status(store, "moving", "critical")
    assert target.target("new") in str(doc["Output"])
    old_hits = target.hits("old")["hits"]
    time.sleep(2.5)
    assert target.hits("old")["hits"] <= old_hits + 1, "the old definition is no longer probed"

    store.delete(check_key("moving"))
    time.sleep(1.5)  # a probe already in flight may still land
    hits = target.hits("new")["hits"]
    time.sleep(2.5)
    assert target.hits("new")["hits"] == hits, "a removed check is no longer probed"
    assert store.check("moving") is None, "a probe in flight must not recreate a removed check"


def test_catalog_checks_are_never_run(server: AccordServer, store: Store, target: CheckTarget) -> None:
    store.register(check_doc("catalog-only", "http", HTTP=target.target("catalog"), Interval=1.0, agent=False))
    store.register(check_doc("agent-twin", "http", HTTP=target.target("twin"), Interval=1.0))
    wait_status(store, "agent-twin", "passing")
    time.sleep(2.5)
    assert store.status("catalog-only") == "critical"
    assert target.hits("catalog")["hits"] == 0


def test_tcp_check_with_the_listener_up_then_closed(server: AccordServer, store: Store) -> None:
    listener = Listener()
    try:
        store.register(check_doc("db-tcp", "tcp", TCP=listener.address, Interval=1.0))
        doc = wait_status(store, "db-tcp", "passing")
        assert doc["Output"] == f"TCP connect {listener.address}: Success"
    finally:
        listener.close()
    doc = wait_status(store, "db-tcp", "critical")
    assert doc["Output"] == f"dial tcp {listener.address}: connect: connection refused"


def test_output_only_changes_write_no_revision(server: AccordServer, store: Store, target: CheckTarget) -> None:
    target.set("counter", 200, counter=True)
    store.register(check_doc("counter-http", "http", HTTP=target.target("counter"), Interval=1.0))
    wait_status(store, "counter-http", "passing")
    revisions = store.history(check_key("counter-http"))
    hits = target.hits("counter")["hits"]
    wait_until(lambda: target.hits("counter")["hits"] >= hits + 3, timeout=CHECK_TIMEOUT_S, what="three more probes")
    assert store.history(check_key("counter-http")) == revisions, "an output-only change must not be written"
    target.set("counter", 503, counter=True)
    wait_status(store, "counter-http", "critical")
    assert store.history(check_key("counter-http")) == revisions + 1


def _pass(server: AccordServer, verb: str, check_id: str, note: str = "") -> httpx.Response:
    return httpx.put(
        f"{server.url}/v1/agent/check/{verb}/{check_id}",
        params={"note": note} if note else None,
        headers={"X-Consul-Token": server.token or ""},
        timeout=10,
    )


def test_ttl_check_critical_until_passed_then_expires(server: AccordServer, store: Store) -> None:
    store.register(check_doc("app-ttl", "ttl", TTL=3.0))
    time.sleep(1.0)
    assert store.status("app-ttl") == "critical", "a TTL check is critical until passed"

    answer = _pass(server, "pass", "app-ttl", "all good")
    assert answer.status_code == 200 and answer.content == b"" and "content-type" not in answer.headers
    doc = store.check("app-ttl")
    assert doc is not None and (doc["Status"], doc["Output"]) == ("passing", "all good")
    before = store.history(check_key("app-ttl"))
    assert _pass(server, "pass", "app-ttl", "all good").status_code == 200
    assert store.history(check_key("app-ttl")) == before, "the same result writes nothing (the timer still restarts)"

    c = consul.Consul(host="127.0.0.1", port=server.port, token=server.token)
    assert c.agent.check.ttl_warn("app-ttl", "slow")
    assert store.status("app-ttl") == "warning"
    assert c.agent.check.ttl_fail("app-ttl", "down")
    assert store.status("app-ttl") == "critical"
    assert c.agent.check.ttl_pass("app-ttl", "up")
    doc = store.check("app-ttl")
    assert doc is not None and (doc["Status"], doc["Output"]) == ("passing", "up")

    update = httpx.put(
        f"{server.url}/v1/agent/check/update/app-ttl",
        json={"Status": "warning", "Output": "from update"},
        headers={"X-Consul-Token": server.token or ""},
    )
    assert update.status_code == 200, update.text
    assert store.status("app-ttl") == "warning"

    # stop heartbeating: the leader marks it critical once the TTL has passed
    doc = wait_status(store, "app-ttl", "critical")
    assert doc["Output"] == "TTL expired"
    assert doc["CriticalSince"]


def test_ttl_never_passed_expires_too(server: AccordServer, store: Store) -> None:
    store.register(check_doc("fresh-ttl", "ttl", TTL=2.0, status="passing"))
    doc = wait_status(store, "fresh-ttl", "critical")
    assert doc["Output"] == "TTL expired"


def test_ttl_refusals_in_consuls_words(server: AccordServer, store: Store, target: CheckTarget) -> None:
    store.register(check_doc("refuse-ttl", "ttl", TTL=30.0))
    store.register(check_doc("refuse-http", "http", HTTP=target.target("refuse"), Interval=10.0))
    unknown = _pass(server, "pass", "nope")
    assert (unknown.status_code, unknown.text) == (
        404,
        'Unknown check ID "nope". Ensure that the check ID is passed, not the check name.',
    )
    not_ttl = _pass(server, "fail", "refuse-http")
    assert (not_ttl.status_code, not_ttl.text) == (500, 'CheckID "refuse-http" does not have associated TTL')
    bad = httpx.put(
        f"{server.url}/v1/agent/check/update/refuse-ttl",
        json={"Status": "bogus"},
        headers={"X-Consul-Token": server.token or ""},
    )
    assert (bad.status_code, bad.text) == (400, "Invalid check status: 'bogus'")
    anonymous = httpx.put(f"{server.url}/v1/agent/check/pass/refuse-ttl")
    assert anonymous.status_code == 403 and anonymous.text.startswith("Permission denied")
    assert store.status("refuse-ttl") == "critical", "no refusal wrote anything"
    with pytest.raises(consul.ConsulException):
        consul.Consul(host="127.0.0.1", port=server.port, token=server.token).agent.check.ttl_pass("refuse-http")


def test_deregister_critical_service_after_removes_service_and_checks(server: AccordServer, store: Store) -> None:
    with Listener() as closed:
        dead = closed.address
    store.put(
        (service_key("doomed"), service_doc("doomed")),
        (
            check_key("doomed-tcp"),
            check_doc(
                "doomed-tcp", "tcp", service_id="doomed", TCP=dead, Interval=1.0, DeregisterCriticalServiceAfter=1.0
            ),
        ),
        (check_key("doomed-ttl"), check_doc("doomed-ttl", "ttl", service_id="doomed", TTL=600.0)),
        (service_key("kept"), service_doc("kept")),
        (
            check_key("kept-ttl"),
            check_doc("kept-ttl", "ttl", service_id="kept", TTL=600.0, DeregisterCriticalServiceAfter=600.0),
        ),
    )
    wait_until(
        lambda: store.get(service_key("doomed")) is None, timeout=CHECK_TIMEOUT_S, what="the service deregistered"
    )
    assert store.check("doomed-tcp") is None and store.check("doomed-ttl") is None
    assert store.get(service_key("kept")) is not None and store.check("kept-ttl") is not None


def test_checks_registered_through_py_consul_run_and_show_in_health(
    accord_servers: AccordServers, tmp_path: Path, target: CheckTarget
) -> None:
    """The catalog's registration and the leader's probes together, seen the way a Consul client sees them."""
    server = accord_servers.start(f"sqlite:///{tmp_path}/own.db", "", expect_token=True)
    c = consul.Consul(host="127.0.0.1", port=server.port, token=server.token)
    url = target.target("e2e")
    with Listener() as tcp:
        c.agent.service.register(
            "e2e", service_id="e2e-1", port=8080, check=consul.Check.http(url, interval="1s", timeout="2s")
        )
        c.agent.service.register(
            "e2e",
            service_id="e2e-2",
            port=8081,
            check=consul.Check.tcp("127.0.0.1", int(tcp.address.rsplit(":", 1)[1]), "1s"),
        )

        def passing_ids() -> set[str] | None:
            _index, nodes = c.health.service("e2e", passing=True)
            ids = {node["Service"]["ID"] for node in nodes}
            return ids if ids == {"e2e-1", "e2e-2"} else None

        wait_until(passing_ids, timeout=CHECK_TIMEOUT_S, what="both instances passing through py-consul")
    target.set("e2e", 503)  # the HTTP target fails and the TCP listener is closed

    def none_passing() -> bool:
        _index, nodes = c.health.service("e2e", passing=True)
        return nodes == []

    wait_until(none_passing, timeout=CHECK_TIMEOUT_S, what="both instances critical")
    _index, checks = c.health.checks("e2e")
    assert {check["CheckID"]: check["Status"] for check in checks} == {
        "service:e2e-1": "critical",
        "service:e2e-2": "critical",
    }
    target.set("e2e", 200)
    wait_until(
        lambda: [n["Service"]["ID"] for n in c.health.service("e2e", passing=True)[1]] == ["e2e-1"],
        timeout=CHECK_TIMEOUT_S,
        what="the HTTP instance passing again",
    )

    # a TTL check: critical until passed, passing while it is, critical again once its TTL runs out
    c.agent.service.register("e2e-ttl", service_id="e2e-ttl-1", port=8082, check=consul.Check.ttl("2s"))
    assert c.agent.checks()["service:e2e-ttl-1"]["Status"] == "critical"
    c.agent.check.ttl_pass("service:e2e-ttl-1", notes="alive")
    _index, checks = c.health.checks("e2e-ttl")
    assert [(check["Status"], check["Output"]) for check in checks] == [("passing", "alive")]
    wait_until(
        lambda: c.agent.checks()["service:e2e-ttl-1"]["Status"] == "critical",
        timeout=CHECK_TIMEOUT_S,
        what="the TTL check to expire",
    )
    assert "TTL expired" in c.agent.checks()["service:e2e-ttl-1"]["Output"]
