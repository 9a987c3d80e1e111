"""The ACL matrix: every endpoint answers 200/401/403 exactly as each token's prefix rules say.

Tokens (created through /api/tokens):
  t1:   config/=read, config/llm/=write, config/llm/openai_=deny   (nested: the longest prefix wins)
  t2:   config/llm/=deny, config/=write
  t3:   no rules (default deny)
  aclr: acl/=read           aclw: acl/tokens/=write
plus the management token, no token at all, and a bogus token. `t1x` is t1 sent as X-Consul-Token.
Every write the matrix refuses must leave the store exactly as it was, and every one it allows must
have its effect: a status code alone proves neither.
"""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.harness import AccordServer
from tests.server.server_harness import collect_until, create_token, sse_events

RULES = {
    "t1": ["config/=read", "config/llm/=write", "config/llm/openai_=deny"],
    "t2": ["config/llm/=deny", "config/=write"],
    "t3": [],
    "aclr": ["acl/=read"],
    "aclw": ["acl/tokens/=write"],
}
CALLERS = ["mgmt", "t1", "t1x", "t2", "t3", "aclr", "aclw", "none", "bogus"]
MATRIX = """
endpoint       mgmt t1  t1x t2  t3  aclr aclw none bogus
list           200  200 200 200 200 200  200  401  401
get_llm        200  200 200 403 403 403  403  401  401
get_emb        200  200 200 200 403 403  403  401  401
get_key        200  403 403 403 403 403  403  401  401
reveal_llm     200  403 403 403 403 403  403  401  401
put_llm        200  200 200 403 403 403  403  401  401
put_emb        200  403 403 200 403 403  403  401  401
put_key        200  403 403 403 403 403  403  401  401
delete_llm     200  200 200 403 403 403  403  401  401
delete_emb     200  403 403 200 403 403  403  401  401
history_llm    200  200 200 403 403 403  403  401  401
history_key    200  403 403 403 403 403  403  401  401
rollback_llm   200  200 200 403 403 403  403  401  401
rollback_emb   200  403 403 200 403 403  403  401  401
diff           200  200 200 200 200 200  200  401  401
export         200  200 200 200 200 200  200  401  401
import_llm     200  200 200 403 403 403  403  401  401
import_mixed   200  403 403 403 403 403  403  401  401
migrate_llm    200  200 200 403 403 403  403  401  401
migrate_emb    200  403 403 200 403 403  403  401  401
migrate_same   200  200 200 403 403 403  403  401  401
watch          200  200 200 200 200 200  200  401  401
audit          200  200 200 200 200 200  200  401  401
tokens_list    200  403 403 403 403 200  200  401  401
tokens_create  201  403 403 403 403 403  403  401  401
tokens_revoke  200  403 403 403 403 403  200  401  401
"""
WRITES = {
    *(f"{verb}_{what}" for verb in ("put", "delete", "rollback", "migrate") for what in ("llm", "emb")),
    *("put_key", "import_llm", "import_mixed", "migrate_same", "tokens_create", "tokens_revoke"),
}
READABLE = {  # the settings each caller may read, for the filtered listings
    "mgmt": {
        "llm.model",
        "llm.temperature",
        "llm.max_output",
        "llm.openai_api_key",
        "llm.org_id",
        "embedding.model",
        "embedding.batch_size",
    },
    "t1": {"llm.model", "llm.temperature", "llm.max_output", "llm.org_id", "embedding.model", "embedding.batch_size"},
    "t2": {"embedding.model", "embedding.batch_size"},
    "t3": set(),
}


def _cases() -> list[tuple[str, str, int]]:
    lines = [line.split() for line in MATRIX.strip().splitlines()]
    header = lines[0][1:]
    assert header == CALLERS
    return [(row[0], caller, int(code)) for row in lines[1:] for caller, code in zip(header, row[1:], strict=True)]


@dataclass
class Env:
    server: AccordServer
    secrets: dict[str, str]
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def client(self, caller: str) -> httpx.Client:
        """One keep-alive client per caller for the whole module (closed by the fixture)."""
        if caller not in self.clients:
            if caller == "none":
                self.clients[caller] = self.server.client()
            elif caller == "t1x":
                self.clients[caller] = self.server.client(headers={"X-Consul-Token": self.secrets["t1"]})
            else:
                self.clients[caller] = self.server.client(self.secrets[caller])
        return self.clients[caller]


@pytest.fixture(scope="module")
def env(module_server: AccordServer) -> Iterator[Env]:
    with module_server.admin() as admin:
        secrets = {name: create_token(admin, name, rules) for name, rules in RULES.items()}
        for path, value in [("llm.model", "m0"), ("embedding.model", "e0"), ("llm.openai_api_key", "sk-" + "k" * 30)]:
            assert admin.put(f"/api/config/{path}", json={"value": value}).status_code == 200
    secrets |= {"mgmt": module_server.token or "", "bogus": "acc_" + uuid.uuid4().hex}
    env = Env(module_server, secrets)
    yield env
    for client in env.clients.values():
        client.close()


PRESETS: dict[str, dict[str, Any]] = {  # stored first, so an allowed write has something to change
    "delete_llm": {"llm.max_output": 7},
    "delete_emb": {"embedding.batch_size": 7},
    "import_llm": {"llm.temperature": 0.1},
    "import_mixed": {"llm.temperature": 0.1, "embedding.batch_size": 1},
    "migrate_llm": {"llm.temperature": 0.1},
    "migrate_emb": {"embedding.batch_size": 1},
    "migrate_same": {"llm.temperature": 0.25},  # what the request sends: nothing to change
}


def _prepare(admin: httpx.Client, endpoint: str) -> dict[str, Any]:
    """Make the request meaningful for a caller that is allowed (a value to delete, a token to revoke)."""
    tag = uuid.uuid4().hex[:12]
    presets = dict(PRESETS.get(endpoint, {}))
    if endpoint.startswith("rollback_"):  # away from version 1, so that rolling back to it is a change
        presets["llm.model" if endpoint == "rollback_llm" else "embedding.model"] = f"prep-{tag}"
    for path, value in presets.items():
        assert admin.put(f"/api/config/{path}", json={"value": value}).status_code == 200
    if endpoint == "tokens_revoke":
        create_token(admin, f"victim-{tag}", [])
    return {"tag": tag}


def _request(client: httpx.Client, endpoint: str, tag: str) -> httpx.Response:
    requests: dict[str, tuple[str, str, dict[str, Any]]] = {
        "list": ("GET", "/api/config", {}),
        "get_llm": ("GET", "/api/config/llm.model", {}),
        "get_emb": ("GET", "/api/config/embedding.model", {}),
        "get_key": ("GET", "/api/config/llm.openai_api_key", {}),
        "reveal_llm": ("GET", "/api/config/llm.model", {"params": {"reveal": "true"}}),
        "put_llm": ("PUT", "/api/config/llm.model", {"json": {"value": f"m-{tag}"}}),
        "put_emb": ("PUT", "/api/config/embedding.model", {"json": {"value": f"e-{tag}"}}),
        "put_key": ("PUT", "/api/config/llm.openai_api_key", {"json": {"value": f"sk-{tag}"}}),
        "delete_llm": ("DELETE", "/api/config/llm.max_output", {}),
        "delete_emb": ("DELETE", "/api/config/embedding.batch_size", {}),
        "history_llm": ("GET", "/api/config/llm.model/history", {}),
        "history_key": ("GET", "/api/config/llm.openai_api_key/history", {}),
        "rollback_llm": ("POST", "/api/config/llm.model/rollback", {"json": {"to_version": 1}}),
        "rollback_emb": ("POST", "/api/config/embedding.model/rollback", {"json": {"to_version": 1}}),
        "diff": ("GET", "/api/config/diff", {"params": {"from_revision": 0}}),
        "export": ("GET", "/api/config/export", {}),
        "import_llm": ("POST", "/api/config/import", {"json": {"settings": {"llm.temperature": 0.7}}}),
        "import_mixed": (
            "POST",
            "/api/config/import",
            {"json": {"settings": {"llm.temperature": 0.7, "embedding.batch_size": 64}}},
        ),
        "migrate_llm": ("POST", "/api/config/migrate", {"json": {"llm": {"temperature": 0.9}}}),
        "migrate_emb": ("POST", "/api/config/migrate", {"json": {"embedding": {"batch_size": 32}}}),
        # the value is already stored: nothing would change, but the answer must not tell a stranger so
        "migrate_same": ("POST", "/api/config/migrate", {"json": {"llm": {"temperature": 0.25}}}),
        "audit": ("GET", "/api/audit", {}),
        "tokens_list": ("GET", "/api/tokens", {}),
        "tokens_create": ("POST", "/api/tokens", {"json": {"name": f"made-{tag}", "rules": ["config/=read"]}}),
        "tokens_revoke": ("DELETE", f"/api/tokens/victim-{tag}", {}),
    }
    if endpoint == "watch":
        with client.stream("GET", "/api/watch") as answer:
            if answer.status_code != 200:
                answer.read()
            return answer
    method, url, kwargs = requests[endpoint]
    return client.request(method, url, **kwargs)


@dataclass(frozen=True)
class Snapshot:
    """Everything a write could change, as the management token sees it (secrets revealed)."""

    revision: int
    settings: dict[str, tuple[Any, int]]  # path -> (value, version)
    tokens: frozenset[str]


def _snapshot(admin: httpx.Client) -> Snapshot:
    listing = admin.get("/api/config").json()
    settings = {}
    for row in listing["settings"]:
        value = row["value"]
        if row["secret"]:
            value = admin.get(f"/api/config/{row['path']}", params={"reveal": "true"}).json()["value"]
        settings[row["path"]] = (value, row["version"])
    tokens = frozenset(token["name"] for token in admin.get("/api/tokens").json())
    return Snapshot(listing["revision"], settings, tokens)


def _first_value(admin: httpx.Client, path: str) -> Any:
    """The value of version 1, which the rollback endpoints restore."""
    return next(row["value"] for row in admin.get(f"/api/config/{path}/history").json() if row["version"] == 1)


def _expected_values(admin: httpx.Client, endpoint: str, tag: str) -> dict[str, Any]:
    """What an allowed write leaves stored (a deleted setting is back at its default)."""
    table: dict[str, dict[str, Any]] = {
        "put_llm": {"llm.model": f"m-{tag}"},
        "put_emb": {"embedding.model": f"e-{tag}"},
        "put_key": {"llm.openai_api_key": f"sk-{tag}"},
        "delete_llm": {"llm.max_output": 1024},
        "delete_emb": {"embedding.batch_size": 2048},
        "import_llm": {"llm.temperature": 0.7},
        "import_mixed": {"llm.temperature": 0.7, "embedding.batch_size": 64},
        "migrate_llm": {"llm.temperature": 0.9},
        "migrate_emb": {"embedding.batch_size": 32},
        "migrate_same": {"llm.temperature": 0.25},
    }
    if endpoint.startswith("rollback_"):
        path = "llm.model" if endpoint == "rollback_llm" else "embedding.model"
        return {path: _first_value(admin, path)}
    return table.get(endpoint, {})


def _assert_took_effect(admin: httpx.Client, endpoint: str, tag: str, before: Snapshot, after: Snapshot) -> None:
    for path, value in _expected_values(admin, endpoint, tag).items():
        assert after.settings[path][0] == value, f"{endpoint}: {path} is {after.settings[path][0]!r}, not {value!r}"
    if endpoint.startswith("delete_"):
        path = next(iter(_expected_values(admin, endpoint, tag)))
        assert after.settings[path][1] == 0, f"{endpoint}: {path} is still stored"
    if endpoint == "tokens_create":
        assert after.tokens == before.tokens | {f"made-{tag}"}
    elif endpoint == "tokens_revoke":
        assert after.tokens == before.tokens - {f"victim-{tag}"} != before.tokens
    elif endpoint != "migrate_same":  # that one stores what is already stored
        assert after.revision > before.revision, f"{endpoint} answered success but the store did not move"


@pytest.mark.parametrize(("endpoint", "caller", "status"), _cases())
def test_acl_matrix(env: Env, endpoint: str, caller: str, status: int) -> None:
    admin = env.client("mgmt")
    tag = _prepare(admin, endpoint)["tag"]
    before = _snapshot(admin) if endpoint in WRITES else None
    answer = _request(env.client(caller), endpoint, tag)
    assert answer.status_code == status, f"{endpoint} as {caller}: {answer.status_code} {answer.text[:300]}"
    if status == 401:
        assert answer.headers.get("www-authenticate", "").lower().startswith("bearer"), answer.headers
        assert answer.json()["error"] == "AuthenticationError"
    elif status == 403:
        assert answer.json()["error"] == "PermissionDeniedError"
        assert answer.json()["detail"]
    if before is None:
        return
    after = _snapshot(admin)
    if status in (401, 403):
        assert after == before, f"refused {endpoint} as {caller} changed the store"
    else:
        _assert_took_effect(admin, endpoint, tag, before, after)


@pytest.mark.parametrize("caller", ["mgmt", "t1", "t2", "t3"])
def test_listings_only_show_readable_settings(env: Env, caller: str) -> None:
    readable = READABLE[caller]
    client = env.client(caller)
    listed = {row["path"] for row in client.get("/api/config").json()["settings"]}
    exported = set(client.get("/api/config/export").json()["settings"])
    diffed = {row["path"] for row in client.get("/api/config/diff", params={"from_revision": 0}).json()["changes"]}
    audited = client.get("/api/audit", params={"limit": 1000}).json()
    assert listed == readable
    assert exported <= readable and diffed <= readable
    assert ("llm.model" in exported) == ("llm.model" in readable)  # stored in the fixture, so exported if readable
    assert {row["path"] for row in audited if row["path"]} <= readable
    if caller != "mgmt":
        assert not [row for row in audited if row["key"].startswith("acl/")], "token records leaked into audit"
    assert ("embedding.model" in diffed) == ("embedding.model" in readable)


@pytest.mark.parametrize("caller", ["t1", "t2"])
def test_watch_only_streams_readable_settings(env: Env, caller: str) -> None:
    sentinel = f"e-{uuid.uuid4().hex}"
    with env.client(caller).stream("GET", "/api/watch", params={"from_revision": 0}) as stream:
        assert env.client("mgmt").put("/api/config/embedding.model", json={"value": sentinel}).status_code == 200
        events = collect_until(sse_events(stream), lambda e: e.data.get("value") == sentinel)
    assert {e.data["path"] for e in events} <= READABLE[caller]
    assert len(events) > 1, "the backlog from revision 0 should hold earlier changes too"


def test_a_token_without_reveal_secrets_cannot_reveal(env: Env) -> None:
    key = f"sk-{uuid.uuid4().hex}"
    with env.server.admin() as admin:
        assert admin.put("/api/config/llm.openai_api_key", json={"value": key}).status_code == 200
        reader = create_token(admin, f"reader-{uuid.uuid4().hex[:8]}", ["config/=read"])
        revealer = create_token(admin, f"revealer-{uuid.uuid4().hex[:8]}", ["config/=read"], reveal=True)
    with env.server.client(reader) as client:
        refused = client.get("/api/config/llm.openai_api_key", params={"reveal": "true"})
        assert refused.status_code == 403 and refused.json()["error"] == "PermissionDeniedError"
        assert key not in client.get("/api/config/llm.openai_api_key").text
    with env.server.client(revealer) as client:
        assert client.get("/api/config/llm.openai_api_key", params={"reveal": "true"}).json()["value"] == key
