"""Issue 8, item 6, on real processes (PostgreSQL, Redis, the echo upstream, `accord proxy`): optional
accord-token authentication, limits on new mappings and on the upstream's answer, query strings kept
out of the logs, SDK-shaped errors for unknown routes, and /v1/models passed through."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from accord.vault import Vault
from tests.cli.cli_helpers import run_cli
from tests.harness import PostgresServer
from tests.proxy.proxy_harness import Child, Stack, anthropic_body, module_stack, openai_body, sse_data

CHAT = "/v1/chat/completions"
MAX_MAPPINGS = 3
MAX_ANSWER = 20_000


@dataclass
class Guarded:
    stack: Stack
    proxy: Child  # --require-token (through ACCORD_PROXY_REQUIRE_TOKEN), small limits, DEBUG logs
    writer: str  # an accord token with vault/=write
    reader: str  # an accord token with vault/=read only


def _token(stack: Stack, name: str, rule: str) -> str:
    made = run_cli("token", "create", "--name", name, "--rule", rule, db=stack.db_url)
    return made.stdout.strip()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, pg_server: PostgresServer) -> Iterator[Guarded]:
    with module_stack(tmp_path_factory.mktemp("proxy-sec"), pg_server, timeout=5.0) as stack:
        limits = ("--max-mappings", str(MAX_MAPPINGS), "--max-answer", str(MAX_ANSWER))
        env = {"ACCORD_PROXY_REQUIRE_TOKEN": "yes"}
        proxy = stack.procs.proxy(stack.upstream.url, stack.db_url, stack.redis_url, debug=True, extra=limits, env=env)
        yield Guarded(
            stack, proxy, _token(stack, "proxy-writer", "vault/=write"), _token(stack, "reader", "vault/=read")
        )


def _post(proxy: Child, body: object, *, path: str = CHAT, **headers: str) -> httpx.Response:
    return httpx.post(proxy.url + path, json=body, headers=headers, timeout=30)


def _mappings(stack: Stack) -> int:
    async def read() -> int:
        async with await Vault.connect(stack.db_url, stack.redis_url, sweep=False) as vault:
            return (await vault.stats()).total

    return asyncio.run(read())


def _openai_error(answer: httpx.Response, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and isinstance(error["type"], str), error
    message: str = error["message"]
    return message


def test_authentication_is_off_by_default(guarded: Guarded) -> None:
    answer = _post(guarded.stack.proxy, openai_body("hello", stream=False))
    assert answer.status_code == 200, answer.text


def test_a_guarded_proxy_wants_an_accord_token_with_vault_write(guarded: Guarded) -> None:
    body = openai_body("hello", stream=False)
    before = guarded.stack.upstream_count()
    assert "X-Accord-Token" in _openai_error(_post(guarded.proxy, body), 401, "authentication_failed")
    _openai_error(_post(guarded.proxy, body, **{"X-Accord-Token": "acc_bogus"}), 401, "authentication_failed")
    denied = _post(guarded.proxy, body, **{"X-Accord-Token": guarded.reader})
    assert "vault/" in _openai_error(denied, 403, "permission_denied")
    claude = _post(guarded.proxy, anthropic_body("hi", stream=False), path="/v1/messages")
    assert claude.status_code == 401 and claude.json()["type"] == "error", claude.text
    assert guarded.stack.upstream_count() == before  # nothing refused reached the upstream
    assert _post(guarded.proxy, body, **{"X-Accord-Token": guarded.writer}).status_code == 200
    assert _post(guarded.proxy, body, **{"Proxy-Authorization": f"Bearer {guarded.writer}"}).status_code == 200
    sent = guarded.stack.upstream.received()[-1]["headers"]
    assert "x-accord-token" not in sent and "proxy-authorization" not in sent


def test_a_revoked_token_is_refused_within_moments(guarded: Guarded) -> None:
    name = f"brief-{uuid.uuid4().hex[:6]}"
    secret = _token(guarded.stack, name, "vault/=write")
    body = openai_body("hello", stream=False)
    deadline = time.monotonic() + 10
    while _post(guarded.proxy, body, **{"X-Accord-Token": secret}).status_code != 200:
        assert time.monotonic() < deadline, "the proxy never accepted a new token"
        time.sleep(0.1)
    run_cli("token", "revoke", name, db=guarded.stack.db_url, extra={"ACCORD_REDIS_URL": guarded.stack.redis_url})
    while _post(guarded.proxy, body, **{"X-Accord-Token": secret}).status_code != 401:
        assert time.monotonic() < deadline, "the proxy still accepts a revoked token"
        time.sleep(0.1)


def test_too_many_new_mappings_are_refused_before_anything_is_stored(guarded: Guarded) -> None:
    tag = uuid.uuid4().hex[:8]
    many = " ".join(f"ops{n}-{tag}@example.com" for n in range(MAX_MAPPINGS + 1))
    before, sent = _mappings(guarded.stack), guarded.stack.upstream_count()
    refused = _post(guarded.proxy, openai_body(many, stream=False), **{"X-Accord-Token": guarded.writer})
    assert str(MAX_MAPPINGS) in _openai_error(refused, 413, "too_many_mappings")
    assert (_mappings(guarded.stack), guarded.stack.upstream_count()) == (before, sent)
    few = " ".join(f"few{n}-{tag}@example.com" for n in range(MAX_MAPPINGS))
    assert _post(guarded.proxy, openai_body(few, stream=False), **{"X-Accord-Token": guarded.writer}).status_code == 200


def test_an_oversized_upstream_answer_is_a_clear_error(guarded: Guarded) -> None:
    token = {"X-Accord-Token": guarded.writer, "x-echo-pad": str(MAX_ANSWER)}
    whole = _post(guarded.proxy, openai_body("hello", stream=False), **token)
    assert str(MAX_ANSWER) in _openai_error(whole, 502, "upstream_too_large")
    claude = _post(guarded.proxy, anthropic_body("hello", stream=False), path="/v1/messages", **token)
    assert claude.status_code == 502 and claude.json()["error"]["code"] == "upstream_too_large", claude.text
    streamed = _post(guarded.proxy, openai_body("hello", stream=True), **token)
    assert streamed.status_code == 200
    assert "upstream_too_large" in sse_data(streamed.text)[-1]
    assert len(streamed.content) < 2 * MAX_ANSWER


def test_query_string_credentials_never_reach_the_logs(guarded: Guarded) -> None:
    secret = f"qs-{uuid.uuid4().hex}"
    answer = _post(
        guarded.proxy,
        openai_body("hello", stream=False),
        path=f"{CHAT}?key={secret}",
        **{"X-Accord-Token": guarded.writer},
    )
    assert answer.status_code == 200, answer.text
    assert httpx.get(f"{guarded.proxy.url}/v1/models?key={secret}", timeout=10).status_code == 401
    logs = guarded.proxy.logs()
    assert "POST /v1/chat/completions" in logs  # the access log is on (DEBUG): it names the path only
    assert secret not in logs


@pytest.mark.parametrize(
    ("method", "path", "status", "shape"),
    [
        ("GET", "/v1/nothing", 404, "openai"),
        ("POST", "/v1/embeddings", 404, "openai"),
        ("GET", CHAT, 405, "openai"),
        ("POST", "/v1/messages/batches", 404, "anthropic"),
    ],
)
def test_unknown_routes_get_sdk_shaped_errors(
    guarded: Guarded, method: str, path: str, status: int, shape: str
) -> None:
    answer = httpx.request(method, guarded.stack.proxy.url + path, json={}, timeout=10)
    assert answer.status_code == status, answer.text
    body = answer.json()
    if shape == "openai":
        assert path in body["error"]["message"] and body["error"]["type"], body
    else:
        assert body["type"] == "error" and path in body["error"]["message"], body


def test_models_are_passed_through(guarded: Guarded) -> None:
    listed = httpx.get(
        guarded.stack.proxy.url + "/v1/models", headers={"Authorization": "Bearer sk-caller"}, timeout=10
    )
    assert listed.status_code == 200, listed.text
    assert listed.json()["data"][0]["id"] == "gpt-echo"
    record = guarded.stack.upstream.received()[-1]
    assert record["path"] == "/v1/models" and record["headers"]["authorization"] == "Bearer sk-caller"
    denied = httpx.get(guarded.proxy.url + "/v1/models", timeout=10)
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "authentication_failed"
