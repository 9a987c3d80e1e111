"""Issue 8, items 3, 4, 7 and 20 against a real `accord serve`: no token escalation, a revoked token's
watch ends, deny wins among equal prefixes, loose prefixes are warned about, the audit limit counts
readable rows, /readyz names no URL to strangers, no redirect from the Host header, replayed events
look like live ones."""

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.server.server_harness import AccordServer, collect_until, create_token, revision, sse_events


@pytest.fixture
def admin(module_server: AccordServer) -> Iterator[httpx.Client]:
    with module_server.admin() as client:
        yield client


def _name(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def _create(client: httpx.Client, rules: list[str], *, reveal: bool = False) -> httpx.Response:
    return client.post("/api/tokens", json={"name": _name("child"), "rules": rules, "reveal_secrets": reveal})


@pytest.mark.parametrize(
    ("creator_rules", "creator_reveal", "child_rules", "child_reveal"),
    [
        (["=write"], False, ["=write"], True),  # no reveal right to hand on
        (["acl/tokens/=write"], False, ["=write"], False),  # write on acl/ only
        (["acl/tokens/=write", "config/=read"], False, ["config/=write"], False),
        (["=write", "config/llm/=read"], False, ["config/=write"], False),  # longer prefix of the creator reads
        (["=write", "config/llm/=deny"], False, ["config/=read"], False),  # ... or denies
        (["=write", "config/llm/=deny"], False, ["config/llm/x=read"], False),
        (["=write", "config/=deny", "config/=write"], False, ["config/=write"], False),  # equal prefixes: deny
    ],
)
def test_a_token_cannot_create_a_stronger_one(
    admin: httpx.Client,
    module_server: AccordServer,
    creator_rules: list[str],
    creator_reveal: bool,
    child_rules: list[str],
    child_reveal: bool,
) -> None:
    secret = create_token(admin, _name("creator"), creator_rules, reveal=creator_reveal)
    with module_server.client(secret) as creator:
        answer = _create(creator, child_rules, reveal=child_reveal)
    assert answer.status_code == 403, answer.text
    assert "more access than its own" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("creator_rules", "child_rules"),
    [
        (["acl/tokens/=write", "config/=read"], ["config/=read", "config/llm/=deny"]),
        (["=write", "config/llm/=read"], ["config/=write", "config/llm/=read"]),
        (["acl/tokens/=write"], ["acl/tokens/=write"]),
        (["acl/tokens/=write"], []),
    ],
)
def test_a_token_can_hand_on_what_it_holds(
    admin: httpx.Client, module_server: AccordServer, creator_rules: list[str], child_rules: list[str]
) -> None:
    secret = create_token(admin, _name("creator"), creator_rules)
    with module_server.client(secret) as creator:
        answer = _create(creator, child_rules)
    assert answer.status_code == 201, answer.text
    assert answer.json()["rules"] == child_rules


def test_a_token_cannot_revoke_a_stronger_one_and_the_audit_shows_the_grant(
    admin: httpx.Client, module_server: AccordServer
) -> None:
    manager = create_token(admin, _name("acl-manager"), ["acl/tokens/=write"])
    strong = _name("strong")
    create_token(admin, strong, ["=write"], reveal=True)
    with module_server.client(manager) as client:
        answer = client.delete(f"/api/tokens/{strong}")
        assert answer.status_code == 403, answer.text
        assert "reveal_secrets" in answer.json()["detail"]
        weak = _name("weak")
        assert client.post("/api/tokens", json={"name": weak, "rules": []}).status_code == 201
        assert client.delete(f"/api/tokens/{weak}").status_code == 200
    assert any(row["name"] == strong for row in admin.get("/api/tokens").json())
    rows = admin.get("/api/audit", params={"prefix": f"acl/tokens/{strong}"}).json()
    assert rows[0]["action"] == "token.create"
    assert rows[0]["new"] == {"rules": ["=write"], "reveal_secrets": True}


def test_a_revoked_tokens_watch_ends(admin: httpx.Client, module_server: AccordServer) -> None:
    name = _name("watcher")
    secret = create_token(admin, name, ["config/=read"])
    with module_server.client(secret) as watcher, watcher.stream("GET", "/api/watch") as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(lines) == "retry: 1000"
        assert admin.delete(f"/api/tokens/{name}").status_code == 200
        revoked = time.monotonic()
        rest = list(lines)  # ends only when the server closes the stream
        assert time.monotonic() - revoked < 3.0, rest
        assert not [line for line in rest if line.startswith("data:")]


def test_an_expiring_tokens_watch_ends(admin: httpx.Client, module_server: AccordServer) -> None:
    answer = admin.post("/api/tokens", json={"name": _name("brief"), "rules": ["config/=read"], "ttl_seconds": 2})
    assert answer.status_code == 201, answer.text
    with module_server.client(answer.json()["secret"]) as watcher, watcher.stream("GET", "/api/watch") as stream:
        assert stream.status_code == 200
        started = time.monotonic()
        list(stream.iter_lines())
        assert time.monotonic() - started < 5.0


def test_equal_prefixes_deny_wins(admin: httpx.Client, module_server: AccordServer) -> None:
    for rules in (["config/=write", "config/=deny"], ["config/=deny", "config/=write"]):
        secret = create_token(admin, _name("tied"), rules)
        with module_server.client(secret) as client:
            assert client.get("/api/config/llm.model").status_code == 403


def test_a_prefix_that_stops_mid_segment_is_warned_about(admin: httpx.Client) -> None:
    answer = _create(admin, ["config/ll=read", "config/embedding/=read"])
    assert answer.status_code == 201, answer.text
    (warning,) = answer.json()["warnings"]
    assert "config/ll=read" in warning and "segment boundary" in warning
    assert _create(admin, ["config/=read"]).json()["warnings"] == []


def test_the_audit_limit_counts_rows_the_token_may_read(admin: httpx.Client, module_server: AccordServer) -> None:
    secret = create_token(admin, _name("auditor"), ["config/embedding/=read"])
    assert admin.put("/api/config/embedding.batch_size", json={"value": 11}).status_code == 200
    for n in range(5):  # newer rows the auditor may not read
        assert admin.put("/api/config/llm.max_output", json={"value": 100 + n}).status_code == 200
    with module_server.client(secret) as auditor:
        rows = auditor.get("/api/audit", params={"limit": 1}).json()
    assert [row["path"] for row in rows] == ["embedding.batch_size"]


def test_readyz_names_no_url_without_a_token(admin: httpx.Client, module_server: AccordServer) -> None:
    with module_server.client() as anonymous:
        body = anonymous.get("/readyz").json()
    assert "url" not in body["dependencies"]["database"]
    assert module_server.db_url.split("@")[-1] not in str(body)
    assert "url" in admin.get("/readyz").json()["dependencies"]["database"]


def test_no_redirect_is_built_from_the_host_header(module_server: AccordServer) -> None:
    with module_server.client(headers={"Host": "evil.example"}) as client:
        answer = client.get("/api/config/", follow_redirects=False)
    assert "evil.example" not in answer.headers.get("location", "")
    assert answer.status_code not in (301, 302, 307, 308)


def test_replayed_events_carry_the_fields_of_live_ones(admin: httpx.Client) -> None:
    start = revision(admin)
    model = f"m-{uuid.uuid4().hex}"
    with admin.stream("GET", "/api/watch") as stream:
        events = sse_events(stream)
        assert admin.put("/api/config/llm.model", json={"value": model}).status_code == 200
        (live,) = collect_until(events, lambda event: event.data.get("value") == model)
    with admin.stream("GET", "/api/watch", params={"from_revision": start}) as stream:
        replayed = collect_until(sse_events(stream), lambda event: event.data.get("value") == model)[-1]
    assert replayed.data == live.data
    assert (replayed.id, replayed.event) == (live.id, live.event)
