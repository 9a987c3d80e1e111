"""PUT /api/config/{path} on its fast path answers what the FastAPI route answers (issue 13, item 4).

A real server on PostgreSQL + Redis. Each request is sent plainly (the fast path's case) and with an
extra query parameter, which the fast path declines and FastAPI ignores, so the second answer is the
FastAPI route's own. Errors must be byte-for-byte the same (same X-Request-ID); a success differs
only in the version, revision and time the second write got. The fast path's counter shows which
requests it answered: every request whose write started (success, conflict, invalid value), none
that it declined (no or unknown token, a path the caller may not write, a mistyped path, ``input``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.harness import AccordServer
from tests.server.server_harness import client_of, counter_total, create_token

CHANGING = {"version", "revision", "mod_revision", "updated_at", "create_revision", "old"}  # old: the first write's new


@pytest.fixture(scope="module")
def tokens(module_server: AccordServer) -> dict[str, str]:
    with module_server.client(module_server.token) as admin:
        # stored before any case runs (the cases run in random order): a create-only write always conflicts
        assert admin.put("/api/config/embedding.batch_size", json={"value": 10}).is_success
        return {
            "mgmt": module_server.token or "",
            "reader": create_token(admin, "fastw-reader", ["config/=read"]),
            "llm-writer": create_token(admin, "fastw-llm", ["config/=read", "config/llm/=write"]),
            "bogus": "acc_" + "z" * 40,
        }


@pytest.fixture
def http(module_server: AccordServer) -> Iterator[httpx.Client]:
    yield from client_of(module_server)


def _fast_count(http: httpx.Client) -> float:
    return counter_total(http, "accord_http_fast_writes")


def _put(http: httpx.Client, url: str, caller: str, tokens: dict[str, str], body: Any) -> httpx.Response:
    headers = {"X-Request-ID": "fastw-same-id"}
    if caller != "none":
        headers["Authorization"] = f"Bearer {tokens[caller]}"
    if isinstance(body, bytes):
        return http.put(url, content=body, headers={**headers, "Content-Type": "application/json"})
    return http.put(url, json=body, headers=headers)


def _steady(answer: httpx.Response) -> tuple[int, str, object]:
    body = answer.json()
    if answer.status_code == 200:
        body = {k: v for k, v in body.items() if k not in CHANGING}
    return answer.status_code, answer.headers["content-type"], body


CASES = [  # (caller, path, body, answered by the fast path)
    ("mgmt", "embedding.batch_size", {"value": 64}, True),
    ("mgmt", "llm.openai_api_key", {"value": "sk-live-fastw-0123456789"}, True),
    ("llm-writer", "llm.model", {"value": "gpt-fastw"}, True),
    ("mgmt", "embedding.batch_size", {"value": 0}, True),  # invalid: ge=1
    ("mgmt", "embedding.batch_size", {"value": "many"}, True),  # invalid type
    ("mgmt", "embedding.batch_size", {"value": 65, "expect_version": 0}, True),  # conflict: exists
    ("mgmt", "embedding.batch_size", {"value": 65, "expect_version": "0"}, False),  # pydantic decides
    ("mgmt", "embedding.batch_size", {"input": "66"}, False),
    ("mgmt", "embedding.batch_size", {"value": 1, "input": "1"}, False),
    ("mgmt", "embedding.batch_size", {"value": 1, "extra": 1}, False),
    ("mgmt", "embedding.batch_sise", {"value": 1}, False),  # mistyped: did you mean
    ("mgmt", "embedding.batch_size", b'{"value": ', False),  # not JSON
    ("mgmt", "embedding.batch_size", b"[1]", False),
    ("llm-writer", "embedding.batch_size", {"value": 5}, False),  # outside its rules
    ("reader", "llm.model", {"value": "x"}, False),
    ("bogus", "llm.model", {"value": "x"}, False),
    ("none", "llm.model", {"value": "x"}, False),
]


@pytest.mark.parametrize(("caller", "path", "body", "fast"), CASES)
def test_fast_and_fastapi_answers_are_the_same(
    http: httpx.Client, tokens: dict[str, str], caller: str, path: str, body: Any, fast: bool
) -> None:
    url = f"/api/config/{path}"
    before = _fast_count(http)
    fast_answer = _put(http, url, caller, tokens, body)
    served = _fast_count(http) - before
    routed = _put(http, url + "?via=fastapi", caller, tokens, body)
    assert _steady(fast_answer) == _steady(routed), (caller, path, body, fast_answer.text, routed.text)
    assert served == (1 if fast else 0), (caller, path, body, fast_answer.status_code)
    assert fast_answer.headers["x-request-id"] == "fastw-same-id"
    if fast_answer.status_code == 200:
        first, second = fast_answer.json(), routed.json()
        assert second["version"] == first["version"] + 1, "the routed write did not follow the fast one"
        assert second["old"] == first["new"]
        assert "sk-live-fastw" not in fast_answer.text, "a PUT answer showed a secret"
    if fast_answer.status_code == 401:
        assert fast_answer.headers.get("www-authenticate") == routed.headers.get("www-authenticate") == "Bearer"


def test_a_fast_write_is_stored_with_its_actor_and_request_id_and_reaches_readers(
    module_server: AccordServer, http: httpx.Client, tokens: dict[str, str]
) -> None:
    headers = {"Authorization": f"Bearer {tokens['llm-writer']}", "X-Request-ID": "fastw-audit-1"}
    written = http.put("/api/config/llm.max_output", json={"value": 777}, headers=headers)
    assert written.status_code == 200, written.text
    with module_server.client(module_server.token) as admin:
        assert admin.get("/api/config/llm.max_output").json()["value"] == 777
        history = admin.get("/api/config/llm.max_output/history").json()
        assert history[0]["actor"] == "fastw-llm"
        audit = admin.get("/api/audit", params={"limit": 20}).json()
        rows = audit if isinstance(audit, list) else audit.get("entries", audit.get("rows", []))
        assert any(row.get("request_id") == "fastw-audit-1" for row in rows), rows[:3]
