"""Consul's KV API through the real py-consul client against a real `accord serve` (reference §2.1-2.3)."""

import base64
import sqlite3
import threading
from typing import Any

import consul
import httpx
import pytest

from tests.harness import AccordServer
from tests.server.consul.conftest import client_for
from tests.server.server_harness import create_token

MAX = 512 * 1024


def raw_client(server: AccordServer) -> httpx.Client:
    return server.client(server.token)


def test_crud_flags_and_indexes(admin: consul.Consul) -> None:
    assert admin.kv.put("crud/a", "one", flags=42) is True
    index, entry = admin.kv.get("crud/a")
    assert entry is not None
    assert (entry["Key"], entry["Value"], entry["Flags"], entry["LockIndex"]) == ("crud/a", b"one", 42, 0)
    assert int(index) == entry["ModifyIndex"] == entry["CreateIndex"]
    assert admin.kv.put("crud/a", "two") is True  # no flags: Consul resets them to 0
    _, again = admin.kv.get("crud/a")
    assert again is not None and again["Flags"] == 0 and again["Value"] == b"two"
    assert again["CreateIndex"] == entry["CreateIndex"] < again["ModifyIndex"]
    assert admin.kv.put("crud/empty", "") is True
    _, empty = admin.kv.get("crud/empty")
    assert empty is not None and empty["Value"] is None
    assert admin.kv.delete("crud/a") is True
    missing_index, missing = admin.kv.get("crud/a")
    assert missing is None and int(missing_index) >= again["ModifyIndex"]
    assert admin.kv.delete("crud/never-was") is True


def test_an_identical_put_writes_no_new_revision(admin: consul.Consul) -> None:
    admin.kv.put("same/k", "v", flags=3)
    _, first = admin.kv.get("same/k")
    assert admin.kv.put("same/k", "v", flags=3) is True
    _, second = admin.kv.get("same/k")
    assert first is not None and second is not None and first["ModifyIndex"] == second["ModifyIndex"]


def test_cas_create_only_and_modify_index(admin: consul.Consul) -> None:
    assert admin.kv.put("cas/k", "1", cas=0) is True
    assert admin.kv.put("cas/k", "2", cas=0) is False
    assert admin.kv.put("cas/missing", "x", cas=50) is False
    _, entry = admin.kv.get("cas/k")
    assert entry is not None
    assert admin.kv.put("cas/k", "3", cas=entry["ModifyIndex"] + 1000) is False
    assert admin.kv.put("cas/k", "3", cas=entry["ModifyIndex"]) is True
    _, now = admin.kv.get("cas/k")
    assert now is not None and now["Value"] == b"3"
    assert admin.kv.delete("cas/k", cas=entry["ModifyIndex"]) is False  # stale
    assert admin.kv.delete("cas/k", cas=now["ModifyIndex"]) is True
    assert admin.kv.delete("cas/k", cas=123) is True  # missing key: Consul answers true
    assert admin.kv.get("cas/k")[1] is None


def test_recurse_keys_and_separator(admin: consul.Consul) -> None:
    for key in ("tree/a", "tree/b/c", "tree/b/d", "treehouse", "tree/dir/"):
        admin.kv.put(key, key)
    _, entries = admin.kv.get("tree", recurse=True)
    assert [e["Key"] for e in entries] == ["tree/a", "tree/b/c", "tree/b/d", "tree/dir/", "treehouse"]
    _, keys = admin.kv.get("tree/", keys=True)
    assert keys == ["tree/a", "tree/b/c", "tree/b/d", "tree/dir/"]
    _, cut = admin.kv.get("tree/", keys=True, separator="/")
    assert cut == ["tree/a", "tree/b/", "tree/dir/"]
    assert admin.kv.get("nothing-here/", keys=True)[1] is None
    assert admin.kv.get("nothing-here/", recurse=True)[1] is None
    assert admin.kv.delete("tree/b", recurse=True) is True
    _, left = admin.kv.get("tree", keys=True)
    assert left == ["tree/a", "tree/dir/", "treehouse"]


def test_a_none_value_creates_a_directory_key(admin: consul.Consul) -> None:
    assert admin.kv.put("folder/", None) is True
    _, entry = admin.kv.get("folder/")
    assert entry is not None and entry["Key"] == "folder/" and entry["Value"] is None


def test_the_misspelled_seperator_is_accepted(kv_server: AccordServer, admin: consul.Consul) -> None:
    admin.kv.put("sep/x/y", "1")
    with raw_client(kv_server) as http:
        answer = http.get("/v1/kv/sep/?keys&seperator=/")
    assert answer.status_code == 200 and answer.json() == ["sep/x/"]


def test_raw_and_headers(kv_server: AccordServer, admin: consul.Consul) -> None:
    admin.kv.put("raw/k", b"\x00bytes\xff")
    with raw_client(kv_server) as http:
        answer = http.get("/v1/kv/raw/k?raw")
        missing = http.get("/v1/kv/raw/none")
    assert answer.status_code == 200 and answer.content == b"\x00bytes\xff"
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["content-security-policy"] == "sandbox"
    assert int(answer.headers["x-consul-index"]) >= 1
    assert missing.status_code == 404 and int(missing.headers["x-consul-index"]) >= 1


def test_odd_keys_round_trip(admin: consul.Consul) -> None:
    for key in ("odd/with space", "odd/ç", "odd/a//b", "odd/under_score", "odd/%41"):
        assert admin.kv.put(key, key) is True
        _, entry = admin.kv.get(key)
        assert entry is not None and entry["Key"] == key and entry["Value"] == key.encode()


def _watch(client: consul.Consul, out: dict[str, Any], key: str, index: str, **kw: Any) -> threading.Thread:
    def run() -> None:
        out["answer"] = client.kv.get(key, index=index, wait="30s", **kw)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_blocking_get_is_woken_by_a_change(admin: consul.Consul) -> None:
    admin.kv.put("block/k", "1")
    index, _ = admin.kv.get("block/k")
    out: dict[str, Any] = {}
    thread = _watch(admin, out, "block/k", index)
    thread.join(1.0)
    assert thread.is_alive(), "a blocking query with a current index must wait"
    admin.kv.put("block/k", "2")
    thread.join(20)
    assert not thread.is_alive()
    new_index, entry = out["answer"]
    assert int(new_index) > int(index) and entry["Value"] == b"2"


def test_a_delete_wakes_a_recurse_watcher_and_moves_its_index(admin: consul.Consul) -> None:
    admin.kv.put("dwatch/a", "1")
    admin.kv.put("dwatch/b", "1")  # newest: deleting a alone must still move the index
    index, _ = admin.kv.get("dwatch/", recurse=True)
    out: dict[str, Any] = {}
    thread = _watch(admin, out, "dwatch/", index, recurse=True)
    thread.join(1.0)
    assert thread.is_alive()
    admin.kv.delete("dwatch/a")
    thread.join(20)
    assert not thread.is_alive()
    new_index, entries = out["answer"]
    assert int(new_index) > int(index) and [e["Key"] for e in entries] == ["dwatch/b"]


def test_wait_without_index_does_not_block(kv_server: AccordServer, admin: consul.Consul) -> None:
    admin.kv.put("nowait/k", "1")
    with raw_client(kv_server) as http:
        answer = http.get("/v1/kv/nowait/k?wait=20s", timeout=10)
    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("query", "status", "text"),
    [
        ("index=abc", 400, "Invalid index"),
        ("index=1&wait=5", 400, "Invalid wait time"),
        ("dc=dc2", 500, "No path to datacenter"),
        ("stale&consistent", 400, "Cannot specify ?stale with ?consistent, conflicting semantics."),
    ],
)
def test_bad_read_parameters_are_answered_as_consul_does(
    kv_server: AccordServer, query: str, status: int, text: str
) -> None:
    with raw_client(kv_server) as http:
        answer = http.get(f"/v1/kv/badq/k?{query}")
    assert (answer.status_code, answer.text) == (status, text)


def test_dc2_raises_in_py_consul_and_writes_nothing(admin: consul.Consul) -> None:
    with pytest.raises(consul.ConsulException):
        admin.kv.put("dc/k", "v", dc="dc2")
    assert admin.kv.get("dc/k")[1] is None


def test_conflicting_flags_and_missing_key(kv_server: AccordServer) -> None:
    with raw_client(kv_server) as http:
        both = http.put("/v1/kv/conf/k?cas=0&acquire=x", content=b"v")
        nokey = http.put("/v1/kv/", content=b"v")
        get_nokey = http.get("/v1/kv/")
        listed = http.get("/v1/kv/conf/k")
    assert both.status_code == 400 and both.text.startswith("Conflicting flags: ")
    assert (nokey.status_code, nokey.text) == (400, "Missing key name")
    assert (get_nokey.status_code, get_nokey.text) == (400, "Missing key name")
    assert listed.status_code == 404


def test_values_up_to_512_kib_are_stored_and_larger_ones_refused_with_consuls_413(
    kv_server: AccordServer, admin: consul.Consul
) -> None:
    assert admin.kv.put("big/max", b"x" * MAX) is True
    _, entry = admin.kv.get("big/max")
    assert entry is not None and len(entry["Value"]) == MAX
    with raw_client(kv_server) as http:
        over = http.put("/v1/kv/big/over", content=b"x" * (MAX + 1))
        huge = http.put("/v1/kv/big/huge", content=b"x" * (3 * MAX))
    for answer, size in ((over, MAX + 1), (huge, 3 * MAX)):
        assert answer.status_code == 413
        assert answer.text == (
            f"Request body({size} bytes) too large, max size: 524288 bytes. See "
            "https://developer.hashicorp.com/consul/docs/agent/config/config-files#kv_max_value_size."
        )
    assert admin.kv.get("big/over")[1] is None and admin.kv.get("big/huge")[1] is None


def test_acl_refusals_and_filtered_listings(kv_server: AccordServer, admin: consul.Consul) -> None:
    with kv_server.admin() as http_admin:
        reader = create_token(http_admin, "kv-app-reader", ["kv/app/=read"])
    admin.kv.put("app/visible", "1")
    admin.kv.put("other/hidden", "1")
    app_reader = client_for(kv_server, reader)
    assert app_reader.kv.get("app/visible")[1] is not None
    with pytest.raises(consul.ACLPermissionDenied):
        app_reader.kv.get("other/hidden")
    with pytest.raises(consul.ACLPermissionDenied):
        app_reader.kv.put("app/visible", "2")
    with httpx.Client(base_url=kv_server.url, headers={"X-Consul-Token": reader}) as http:
        listing = http.get("/v1/kv/?recurse")
    assert listing.status_code == 200
    assert {e["Key"] for e in listing.json()} == {"app/visible"}
    assert listing.headers["x-consul-results-filtered-by-acls"] == "true"
    anonymous = client_for(kv_server)
    with pytest.raises(consul.ACLPermissionDenied):
        anonymous.kv.get("app/visible")
    with pytest.raises(consul.ACLPermissionDenied):
        anonymous.kv.put("app/new", "x")
    with pytest.raises(consul.ACLPermissionDenied):
        client_for(kv_server, "not-a-token").kv.get("app/visible")
    assert admin.kv.get("app/new")[1] is None
    _, entry = admin.kv.get("app/visible")
    assert entry is not None and entry["Value"] == b"1"


def test_secrets_are_sealed_and_need_reveal_rights(kv_server: AccordServer, admin: consul.Consul) -> None:
    admin.kv.put("secrets/db-password", "hunter2")
    _, entry = admin.kv.get("secrets/db-password")
    assert entry is not None and entry["Value"] == b"hunter2"
    with kv_server.admin() as http_admin:
        plain = create_token(http_admin, "kv-secret-reader", ["kv/=read"])
        history = http_admin.get("/api/audit", params={"prefix": "kv/secrets/"})
    assert history.status_code == 200 and history.json(), history.text
    assert b"hunter2" not in history.content and b"aHVudGVyMg" not in history.content
    with sqlite3.connect(kv_server.db_url.removeprefix("sqlite+aiosqlite:///")) as db:
        (stored,) = db.execute("SELECT value FROM accord_kv WHERE key = 'kv/secrets/db-password'").fetchone()
    assert b"hunter2" not in stored
    with pytest.raises(consul.ACLPermissionDenied):
        client_for(kv_server, plain).kv.get("secrets/db-password")
    _, listing = client_for(kv_server, plain).kv.get("secrets/", recurse=True)
    assert listing is None


def test_txn_applies_atomically_or_rolls_back_with_409(kv_server: AccordServer, admin: consul.Consul) -> None:
    b64 = base64.b64encode
    admin.kv.put("txn/existing", "old")
    _, existing = admin.kv.get("txn/existing")
    assert existing is not None
    ok_ops = [
        {"KV": {"Verb": "set", "Key": "txn/a", "Value": b64(b"A").decode()}},
        {"KV": {"Verb": "cas", "Key": "txn/existing", "Value": b64(b"new").decode(), "Index": existing["ModifyIndex"]}},
        {"KV": {"Verb": "get", "Key": "txn/existing"}},
        {"KV": {"Verb": "delete", "Key": "txn/gone-anyway"}},
    ]
    with raw_client(kv_server) as http:
        ok = http.put("/v1/txn", json=ok_ops)
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert body["Errors"] is None
        assert [r["KV"]["Key"] for r in body["Results"]] == ["txn/a", "txn/existing", "txn/existing"]
        assert body["Results"][0]["KV"]["Value"] is None
        assert base64.b64decode(body["Results"][2]["KV"]["Value"]) == b"new"
        assert body["Results"][2]["KV"]["ModifyIndex"] == body["Results"][1]["KV"]["ModifyIndex"] > 0
        bad_ops = [
            {"KV": {"Verb": "set", "Key": "txn/never", "Value": b64(b"x").decode()}},
            {"KV": {"Verb": "delete", "Key": "txn/a"}},
            {"KV": {"Verb": "check-index", "Key": "txn/existing", "Index": 1}},
        ]
        bad = http.put("/v1/txn", json=bad_ops)
        assert bad.status_code == 409, bad.text
        errors = bad.json()
        assert errors["Results"] is None
        modify = admin.kv.get("txn/existing")[1]["ModifyIndex"]
        assert errors["Errors"] == [
            {
                "OpIndex": 2,
                "What": f'failed index check for key "txn/existing", current modify index {modify} != 1',
            }
        ]
        too_many = http.put("/v1/txn", json=[{"KV": {"Verb": "get", "Key": "txn/a"}}] * 129)
        assert too_many.status_code == 413
    assert admin.kv.get("txn/never")[1] is None
    assert admin.kv.get("txn/a")[1] is not None


def test_py_consul_txn_put(kv_server: AccordServer) -> None:
    """py-consul's txn.put sends no token: with an anonymous token holding kv/ rules it works."""
    with kv_server.admin() as http_admin:
        create_token(http_admin, "anonymous", ["kv/pytxn/=write"])
    anonymous = client_for(kv_server)
    result = anonymous.txn.put([{"KV": {"Verb": "set", "Key": "pytxn/k", "Value": base64.b64encode(b"v").decode()}}])
    assert result["Errors"] is None
    answer = anonymous.txn.put([{"KV": {"Verb": "get", "Key": "pytxn/k"}}])
    assert base64.b64decode(answer["Results"][0]["KV"]["Value"]) == b"v"


def test_an_undeclared_method_is_consuls_405(kv_server: AccordServer) -> None:
    with raw_client(kv_server) as http:
        kv = http.post("/v1/kv/m/k", content=b"v")
        session = http.get("/v1/session/create")
    assert (kv.status_code, kv.text, kv.headers["allow"]) == (405, "method POST not allowed", "OPTIONS,GET,PUT,DELETE")
    assert (session.status_code, session.headers["allow"]) == (405, "OPTIONS,PUT")
