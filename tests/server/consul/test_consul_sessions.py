"""Consul sessions and locks through py-consul against a real `accord serve` (reference §2.5)."""

import base64
import threading
import time
from typing import Any

import consul
import httpx
import pytest

from tests.harness import AccordServer, wait_until
from tests.server.consul.conftest import client_for
from tests.server.server_harness import create_token

TTL_S = 10
EXPIRY_BUDGET_S = 2 * TTL_S + 15  # Consul's doubling, the 1 s reaper, and a noisy machine


def test_create_info_renew_list_and_destroy(admin: consul.Consul) -> None:
    session = admin.session.create(name="web-lock", ttl=20, lock_delay=5, behavior="release")
    _, info = admin.session.info(session)
    assert info is not None
    assert info["ID"] == session and info["Name"] == "web-lock" and info["Node"] == "accord"
    assert info["TTL"] == "20s" and info["LockDelay"] == 5_000_000_000 and info["Behavior"] == "release"
    assert info["NodeChecks"] == ["serfHealth"]
    renewed = admin.session.renew(session)
    assert renewed["ID"] == session and renewed["TTL"] == "20s"
    _, listed = admin.session.list()
    assert session in {s["ID"] for s in listed}
    _, on_node = admin.session.node("accord")
    assert session in {s["ID"] for s in on_node}
    assert admin.session.destroy(session) is True
    assert admin.session.info(session)[1] is None
    with pytest.raises(consul.NotFound):
        admin.session.renew(session)


def test_defaults_and_checks_none(kv_server: AccordServer, admin: consul.Consul) -> None:
    with kv_server.admin() as http:
        bare = http.put("/v1/session/create")
        assert bare.status_code == 200, bare.text
        info = http.get(f"/v1/session/info/{bare.json()['ID']}").json()[0]
    assert info["LockDelay"] == 15_000_000_000 and info["Behavior"] == "release" and info["TTL"] == ""
    session = admin.session.create(checks=[])
    _, none = admin.session.info(session)
    assert none is not None and none["NodeChecks"] == []


@pytest.mark.parametrize(
    ("body", "status", "prefix"),
    [
        ({"TTL": "5s"}, 500, "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]"),
        ({"TTL": "25h"}, 500, "Invalid Session TTL '90000000000000', must be between [10s=24h0m0s]"),
        ({"TTL": "ten"}, 500, "Session TTL 'ten' invalid"),
        ({"Behavior": "explode"}, 500, "Invalid Behavior setting 'explode'"),
        ({"Node": "n2"}, 500, "Missing node registration"),
        ({"Checks": ["no-such-check"]}, 500, "Missing check 'no-such-check' registration"),
    ],
)
def test_bad_session_bodies_are_refused_and_create_nothing(
    kv_server: AccordServer, body: dict[str, object], status: int, prefix: str
) -> None:
    with kv_server.admin() as http:
        before = http.get("/v1/session/list").json()
        answer = http.put("/v1/session/create", json=body)
        after = http.get("/v1/session/list").json()
    assert answer.status_code == status and answer.text.startswith(prefix), answer.text
    assert before == after


def test_malformed_json_is_400_and_dc2_is_refused(kv_server: AccordServer, admin: consul.Consul) -> None:
    with kv_server.admin() as http:
        answer = http.put("/v1/session/create", content=b'{"TTL": ')
    assert answer.status_code == 400 and answer.text.startswith("Request decode failed")
    with pytest.raises(consul.ConsulException):
        admin.session.create(dc="dc2")
    with pytest.raises(consul.ConsulException):
        admin.session.create(node="n2")


def test_acquire_release_and_lock_index(admin: consul.Consul) -> None:
    one = admin.session.create(lock_delay=0, checks=[])
    two = admin.session.create(lock_delay=0, checks=[])
    assert admin.kv.put("locks/a", "leader-1", acquire=one) is True
    _, held = admin.kv.get("locks/a")
    assert held is not None and held["Session"] == one and held["LockIndex"] == 1
    assert admin.kv.put("locks/a", "leader-2", acquire=two) is False
    assert admin.kv.put("locks/a", "leader-1b", acquire=one) is True  # same session: value, same LockIndex
    assert admin.kv.put("locks/a", "x", release=two) is False
    assert admin.kv.put("locks/a", "released", release=one) is True
    _, free = admin.kv.get("locks/a")
    assert free is not None and "Session" not in free and free["LockIndex"] == 1 and free["Value"] == b"released"
    assert admin.kv.put("locks/a", "leader-2", acquire=two) is True
    _, again = admin.kv.get("locks/a")
    assert again is not None and again["LockIndex"] == 2 and again["Session"] == two
    assert admin.kv.put("locks/none", "x", release="foo") is False
    with pytest.raises(consul.ConsulException, match="invalid session"):
        admin.kv.put("locks/b", "x", acquire="00000000-0000-0000-0000-00000000dead")


def test_destroy_with_behavior_delete_removes_held_keys(admin: consul.Consul) -> None:
    session = admin.session.create(behavior="delete", lock_delay=0, checks=[])
    assert admin.kv.put("ephemeral/member", "me", acquire=session) is True
    admin.session.destroy(session)
    assert admin.kv.get("ephemeral/member")[1] is None


def test_lock_delay_refuses_acquire_after_invalidation(admin: consul.Consul) -> None:
    holder = admin.session.create(lock_delay=3, checks=[])
    other = admin.session.create(lock_delay=0, checks=[])
    assert admin.kv.put("delay/k", "x", acquire=holder) is True
    admin.session.destroy(holder)
    _, entry = admin.kv.get("delay/k")
    assert entry is not None and "Session" not in entry  # released (behavior release)
    assert admin.kv.put("delay/k", "y", acquire=other) is False  # lock-delay
    assert wait_until(lambda: admin.kv.put("delay/k", "y", acquire=other), timeout=15)


def test_a_session_not_renewed_expires_at_twice_its_ttl_and_releases_its_lock(admin: consul.Consul) -> None:
    session = admin.session.create(ttl=TTL_S, lock_delay=0, checks=[])
    assert admin.kv.put("expiry/k", "x", acquire=session) is True
    started = time.monotonic()
    assert wait_until(lambda: admin.session.info(session)[1] is None, timeout=EXPIRY_BUDGET_S)
    assert time.monotonic() - started >= TTL_S  # not before its TTL (Consul doubles it; never less)
    assert wait_until(lambda: "Session" not in (admin.kv.get("expiry/k")[1] or {}), timeout=10)


def test_a_renewed_session_outlives_its_ttl(admin: consul.Consul) -> None:
    session = admin.session.create(ttl=TTL_S, checks=[])
    deadline = time.monotonic() + 2 * TTL_S + 5
    while time.monotonic() < deadline:
        assert admin.session.renew(session)["ID"] == session
        time.sleep(3)
    assert admin.session.info(session)[1] is not None
    admin.session.destroy(session)


def test_session_acl(kv_server: AccordServer) -> None:
    with kv_server.admin() as http:
        reader = create_token(http, "session-reader", ["registry/session/=read", "kv/=write"])
    limited = client_for(kv_server, reader)
    assert limited.session.list()[1] is not None
    with pytest.raises(consul.ACLPermissionDenied):
        limited.session.create()
    with httpx.Client(base_url=kv_server.url) as http:
        assert http.put("/v1/session/create").status_code == 403


def test_a_blocking_session_list_is_woken_by_a_new_session(admin: consul.Consul) -> None:
    index, _ = admin.session.list()
    out: dict[str, Any] = {}

    def watch() -> None:
        out["answer"] = admin.session.list(index=index, wait="30s")

    thread = threading.Thread(target=watch)
    thread.start()
    thread.join(1.0)
    assert thread.is_alive()
    session = admin.session.create(checks=[])
    thread.join(20)
    assert not thread.is_alive()
    new_index, sessions = out["answer"]
    assert int(new_index) > int(index) and session in {s["ID"] for s in sessions}


def test_txn_lock_check_session_and_unlock(kv_server: AccordServer, admin: consul.Consul) -> None:
    session = admin.session.create(lock_delay=0, checks=[])
    other = admin.session.create(lock_delay=0, checks=[])
    value = base64.b64encode(b"leader").decode()
    with kv_server.admin() as http:
        locked = http.put(
            "/v1/txn", json=[{"KV": {"Verb": "lock", "Key": "txnlock/k", "Value": value, "Session": session}}]
        )
        assert locked.status_code == 200, locked.text
        assert locked.json()["Results"][0]["KV"]["Session"] == session
        assert locked.json()["Results"][0]["KV"]["LockIndex"] == 1
        stolen = http.put("/v1/txn", json=[{"KV": {"Verb": "lock", "Key": "txnlock/k", "Session": other}}])
        assert stolen.status_code == 409
        assert stolen.json()["Errors"][0]["What"] == 'failed to lock key "txnlock/k", lock is already held'
        wrong = http.put("/v1/txn", json=[{"KV": {"Verb": "check-session", "Key": "txnlock/k", "Session": other}}])
        assert wrong.status_code == 409
        assert wrong.json()["Errors"] == [
            {
                "OpIndex": 0,
                "What": f'failed session check for key "txnlock/k", current session "{session}" != "{other}"',
            }
        ]
        unlocked = http.put(
            "/v1/txn",
            json=[
                {"KV": {"Verb": "check-session", "Key": "txnlock/k", "Session": session}},
                {"KV": {"Verb": "unlock", "Key": "txnlock/k", "Session": session}},
            ],
        )
        assert unlocked.status_code == 200, unlocked.text
    _, entry = admin.kv.get("txnlock/k")
    assert entry is not None and "Session" not in entry and entry["LockIndex"] == 1


def test_txn_ops_a_token_may_not_perform_roll_back(kv_server: AccordServer, admin: consul.Consul) -> None:
    with kv_server.admin() as http:
        limited = create_token(http, "txn-limited", ["kv/txnacl/ok/=write"])
    value = base64.b64encode(b"v").decode()
    with httpx.Client(base_url=kv_server.url, headers={"X-Consul-Token": limited}) as http:
        answer = http.put(
            "/v1/txn",
            json=[
                {"KV": {"Verb": "set", "Key": "txnacl/ok/a", "Value": value}},
                {"KV": {"Verb": "set", "Key": "txnacl/denied", "Value": value}},
            ],
        )
    assert answer.status_code == 409
    assert answer.json()["Errors"] == [{"OpIndex": 1, "What": "Permission denied"}]
    assert admin.kv.get("txnacl/ok/a")[1] is None
