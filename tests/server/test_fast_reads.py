"""GET /api/config/{path} on its fast path answers exactly what the FastAPI route answers (issue 13, item 4).

A real server on PostgreSQL + Redis. Each request is sent twice: plainly (the fast path's case) and
with an extra query parameter, which the fast path declines and FastAPI ignores — so the second
answer is the FastAPI route's own. Every caller, every outcome: allowed, masked, revealed, refused,
unknown token, no token, a mistyped path, a path outside the caller's rules. The fast path's
counter in /metrics shows it really answered the successes and declined the rest.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.harness import AccordServer
from tests.server.server_harness import client_of, counter_total, create_token

PATHS = ["llm.model", "llm.openai_api_key", "llm.org_id", "embedding.batch_size", "embedding.batch_sise", "nope"]


@pytest.fixture(scope="module")
def secrets(module_server: AccordServer) -> dict[str, str]:
    with module_server.client(module_server.token) as admin:
        assert admin.put("/api/config/llm.openai_api_key", json={"value": "sk-live-fast-path-0123456789"}).is_success
        assert admin.put("/api/config/llm.model", json={"value": "gpt-fast"}).is_success
        return {
            "mgmt": module_server.token or "",
            "reader": create_token(admin, "fast-reader", ["config/=read", "config/llm/openai_=deny"]),
            "revealer": create_token(admin, "fast-revealer", ["config/=read"], reveal=True),
            "emb-only": create_token(admin, "fast-emb", ["config/embedding/=read"]),
            "bogus": "acc_" + "x" * 40,
        }


@pytest.fixture
def http(module_server: AccordServer) -> Iterator[httpx.Client]:
    yield from client_of(module_server)


def _fast_count(http: httpx.Client) -> float:
    return counter_total(http, "accord_http_fast_reads")


def _answer(http: httpx.Client, url: str, headers: dict[str, str]) -> tuple[int, str, object]:
    got = http.get(url, headers={**headers, "X-Request-ID": "same-id"})
    return got.status_code, got.headers["content-type"], got.json()


@pytest.mark.parametrize("caller", ["mgmt", "reader", "revealer", "emb-only", "bogus", "none", "consul-header"])
@pytest.mark.parametrize("reveal", ["", "?reveal=true", "?reveal=false"])
def test_fast_and_fastapi_answers_are_the_same(
    http: httpx.Client, secrets: dict[str, str], caller: str, reveal: str
) -> None:
    if caller == "none":
        headers = {}
    elif caller == "consul-header":
        headers = {"X-Consul-Token": secrets["reader"]}
    else:
        headers = {"Authorization": f"Bearer {secrets[caller]}"}
    for path in PATHS:
        plain = f"/api/config/{path}{reveal}"
        slow = f"{plain}{'&' if reveal else '?'}via=fastapi"
        before = _fast_count(http)
        fast_answer = _answer(http, plain, headers)
        served = _fast_count(http) - before
        assert fast_answer == _answer(http, slow, headers), (caller, plain)
        assert served == (1 if fast_answer[0] == 200 else 0), (caller, plain, fast_answer[0])
        if fast_answer[0] == 200:
            revealed = caller in ("mgmt", "revealer") and reveal == "?reveal=true" and path == "llm.openai_api_key"
            assert ("sk-live-fast-path" in str(fast_answer[2])) == revealed, (caller, plain)


def test_a_change_is_seen_at_once_and_a_revoked_token_is_refused(
    module_server: AccordServer, http: httpx.Client, secrets: dict[str, str]
) -> None:
    with module_server.client(module_server.token) as admin:
        temporary = create_token(admin, "fast-temporary", ["config/=read"])
        headers = {"Authorization": f"Bearer {temporary}"}
        for value in (11, 12, 13):
            assert admin.put("/api/config/embedding.batch_size", json={"value": value}).is_success
            got = http.get("/api/config/embedding.batch_size", headers=headers)
            assert got.status_code == 200 and got.json()["value"] == value  # the row cache moved with the revision
        assert admin.delete("/api/tokens/fast-temporary").is_success
        refused = http.get("/api/config/embedding.batch_size", headers=headers)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"] == "AuthenticationError"


KV_URLS = [
    "/v1/kv/fast/one",
    "/v1/kv/fast/one?raw",
    "/v1/kv/fast/one?raw=true",
    "/v1/kv/fast/missing",
    "/v1/kv/fast/?recurse",
    "/v1/kv/fast/?keys&separator=/",
    "/v1/kv/secrets/fast_api_key",
    "/v1/kv/secrets/fast_api_key?raw",
    "/v1/kv/fast/one?dc=elsewhere",
    "/v1/kv/fast/one?consistent&stale",
    "/v1/kv/",
]
KV_HEADERS = ("content-type", "x-consul-index", "x-consul-knownleader", "x-consul-lastcontact")


@pytest.fixture(scope="module")
def kv_tokens(module_server: AccordServer) -> dict[str, str]:
    with module_server.client(module_server.token) as admin:
        for key, value in (("fast/one", b"1"), ("fast/two/deep", b"two"), ("secrets/fast_api_key", b"sk-kv-fast")):
            assert admin.put(f"/v1/kv/{key}", content=value).json() is True
        return {
            "mgmt": module_server.token or "",
            "kv-reader": create_token(admin, "fast-kv-reader", ["kv/=read"]),
            "bogus": "acc_" + "y" * 40,
        }


@pytest.mark.parametrize("caller", ["mgmt", "kv-reader", "bogus", "none"])
def test_consul_kv_reads_answer_the_same_on_both_paths(
    http: httpx.Client, kv_tokens: dict[str, str], caller: str
) -> None:
    headers = {} if caller == "none" else {"X-Consul-Token": kv_tokens[caller]}
    for url in KV_URLS:
        before = _fast_count(http)
        fast = http.get(url, headers=headers)
        served = _fast_count(http) - before
        routed = http.get(url + ("&" if "?" in url else "?") + "index=0", headers=headers)  # the fast path declines
        assert (fast.status_code, fast.content) == (routed.status_code, routed.content), (caller, url)
        for name in KV_HEADERS:
            assert fast.headers.get(name) == routed.headers.get(name), (caller, url, name)
        assert served == (1 if fast.status_code in (200, 404) else 0), (caller, url, fast.status_code)
    statuses = {url: http.get(url, headers=headers).status_code for url in KV_URLS}
    if caller in ("mgmt", "kv-reader"):
        assert http.get("/v1/kv/fast/one?raw", headers=headers).content == b"1"
        assert statuses["/v1/kv/fast/missing"] == 404 and statuses["/v1/kv/fast/?recurse"] == 200
        assert statuses["/v1/kv/secrets/fast_api_key?raw"] == (200 if caller == "mgmt" else 403)
    else:
        assert statuses["/v1/kv/fast/one"] == 403
