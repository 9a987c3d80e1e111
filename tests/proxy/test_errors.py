"""The proxy's edges: bad input is refused with a clear 4xx before anything reaches the vault, upstream
errors pass through unchanged, a hanging upstream is cut off, and the caller's credentials reach the
upstream but never the proxy's logs (which run at DEBUG for every logger here).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from accord.vault import Resolution, Vault
from tests.harness import PostgresServer, free_port
from tests.proxy.proxy_harness import (
    TOKEN_RE,
    Stack,
    anthropic_body,
    module_stack,
    openai_body,
    read_answer,
    sse_data,
)

MIB = 1024 * 1024
TEXT = "Restart arn:aws:eks:us-east-1:123456789012:cluster/prod-eu and mail ops@example.com"
ORIGINALS = ("arn:aws:eks:us-east-1:123456789012:cluster/prod-eu", "ops@example.com")
SECRETS = {
    "Authorization": "Bearer sk-proj-Zx81qTopSecretCallerKey",
    "x-api-key": "sk-ant-api03-AnotherCallerSecret77",
    "OpenAI-Organization": "org-CallerOrgSecret42",
    "anthropic-version": "2023-06-01",
}
PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, pg_server: PostgresServer) -> Iterator[Stack]:
    """One database, a private Redis, the echo upstream and a proxy (3 s timeout, DEBUG logs) for the module."""
    with module_stack(tmp_path_factory.mktemp("proxy-errors"), pg_server, timeout=3.0, debug=True) as shared:
        yield shared


def big_body(email: str) -> bytes:
    filler = f"mail {email} now. " * (10 * MIB // 26 + 1)
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": filler}]}).encode()


# EMAIL is replaced by an address no other test uses: masked by mistake, it would add a mapping.
BAD_INPUT = {
    "invalid utf-8": (b'{"model":"m","messages":[{"role":"user","content":"EMAIL \xff\xfe"}]}', 400, "UTF-8"),
    "malformed json": (b'{"model":"m","messages":[{"role":"user","content":"EMAIL"}', 400, "JSON"),
    "not an object": (b'[{"role":"user","content":"EMAIL"}]', 400, "object"),
    "content not text": (
        b'{"messages":[{"role":"user","content":42},{"role":"user","content":"EMAIL"}]}',
        400,
        "content",
    ),
    "no role": (b'{"messages":[{"content":"EMAIL"}]}', 400, "role"),
    "stream not bool": (b'{"stream":"yes","messages":[{"role":"user","content":"EMAIL"}]}', 400, "stream"),
    "lone surrogate": (b'{"messages":[{"role":"user","content":"EMAIL \\ud800"}]}', 400, "surrogate"),
}


def resolve(stack: Stack, tokens: list[str]) -> Resolution:
    async def read() -> Resolution:
        async with await Vault.connect(stack.db_url, stack.redis_url, sweep=False) as vault:
            return await vault.resolve(tokens)

    return asyncio.run(read())


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
@pytest.mark.parametrize("case", [*BAD_INPUT, "10 MiB body", "10 MiB chunked body"])
def test_bad_input_is_refused_and_nothing_is_stored(stack: Stack, case: str, dialect: str, echo_seed: int) -> None:
    email = f"ops-{echo_seed}@example.com"  # this test's own value
    before, sent_before = stack.stats(), stack.upstream_count()
    url = stack.proxy.url + PATHS[dialect]
    headers = {"content-type": "application/json"}
    if case.startswith("10 MiB"):
        body, status, phrase = big_body(email), 413, "larger than"
        assert len(body) > 10 * MIB
        content: bytes | Iterator[bytes] = body
        if case == "10 MiB chunked body":
            content = iter([body[i : i + MIB] for i in range(0, len(body), MIB)])
        answer = httpx.post(url, content=content, headers=headers, timeout=60)
    else:
        template, status, phrase = BAD_INPUT[case]
        body = template.replace(b"EMAIL", email.encode())
        answer = httpx.post(url, content=body, headers=headers, timeout=30)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert phrase.lower() in error["message"].lower(), error
    assert error["type"] in ("invalid_request_error", "request_too_large"), error
    assert stack.stats() == before, "bad input must not store anything"
    assert stack.upstream_count() == sent_before, "bad input must not reach the upstream"


def test_a_valid_request_is_stored(stack: Stack, echo_seed: int) -> None:
    """The control for the test above: values of the same kind in a valid request do create mappings.

    Counts only this test's own mappings (values no other test sends), not what earlier tests left."""
    own = (f"arn:aws:eks:us-east-1:123456789012:cluster/own-{echo_seed}", f"ops-{echo_seed}@example.com")
    text = f"Restart {own[0]} and mail {own[1]}"
    before = stack.stats()
    answer = httpx.post(stack.proxy.url + PATHS["openai"], json=openai_body(text, stream=False), timeout=30)
    assert read_answer("openai", answer, stream=False).texts[0] == text
    tokens = TOKEN_RE.findall(stack.upstream.received()[-1]["body"])
    assert len(tokens) == 2 and not any(value in stack.upstream.received()[-1]["body"] for value in own)
    assert sorted(resolve(stack, tokens).originals.values()) == sorted(own), "its own two values are stored"
    assert stack.stats().total == before.total + 2, "as two new mappings"


@pytest.mark.parametrize(
    ("extra", "check"),
    [
        ('"seed":18446744073709551616', lambda body: body["seed"] == 2**64),
        ('"temperature":NaN', lambda body: math.isnan(body["temperature"])),
        ('"top_p":1e400', lambda body: body["top_p"] == math.inf),
        ('"user":"\\ud800"', lambda body: body["user"] == "\ud800"),
    ],
    ids=["int beyond 64 bits", "NaN", "overflow", "lone surrogate"],
)
def test_a_masked_body_keeps_what_orjson_would_change(
    stack: Stack, echo_seed: int, extra: str, check: Callable[[dict[str, Any]], bool]
) -> None:
    """Masked bodies are written back by orjson, except those holding what it refuses or writes as null."""
    text = f"mail number-{echo_seed}@example.com"
    raw = '{"model":"m",' + extra + ',"messages":[{"role":"user","content":' + json.dumps(text) + "}]}"
    headers = {"content-type": "application/json"}
    answer = httpx.post(stack.proxy.url + PATHS["openai"], content=raw.encode(), headers=headers, timeout=30)
    assert read_answer("openai", answer, stream=False).texts[0] == text
    sent = json.loads(stack.upstream.received()[-1]["body"])
    assert check(sent), stack.upstream.received()[-1]["body"][:200]
    assert TOKEN_RE.fullmatch(sent["messages"][0]["content"].removeprefix("mail ")), "and it was masked"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_upstream_error_status_passes_through_unmasked(stack: Stack, dialect: str, stream: bool) -> None:
    body = openai_body(TEXT, stream=stream) if dialect == "openai" else anthropic_body(TEXT, stream=stream)
    answer = httpx.post(stack.proxy.url + PATHS[dialect], json=body, headers={"x-echo-status": "429"}, timeout=30)
    assert answer.status_code == 429, answer.text
    assert answer.headers["retry-after"] == "7"
    assert answer.headers["x-echo-marker"] == "kept"
    error = answer.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert error["message"] == f"rate limited while reading: {TEXT}", "the error body comes back unmasked"
    assert not any(original in stack.upstream.received()[-1]["body"] for original in ORIGINALS)


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_hanging_upstream_is_cut_off_with_504(stack: Stack, dialect: str) -> None:
    body = openai_body(TEXT, stream=False) if dialect == "openai" else anthropic_body(TEXT, stream=False)
    answer = httpx.post(stack.proxy.url + PATHS[dialect], json=body, headers={"x-echo-hang": "headers"}, timeout=60)
    assert answer.status_code == 504, answer.text
    error = answer.json()["error"]
    assert "did not answer within 3 s" in error["message"]
    assert error["code"] == "upstream_timeout"


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_a_stream_is_passed_on_while_the_upstream_is_still_sending(stack: Stack, dialect: str) -> None:
    """The upstream sends a few pieces and then nothing: the caller has them long before the 3 s timeout
    ends the stream (a proxy that read the answer whole would send nothing until then)."""
    text = "nothing sensitive in this one"
    body = openai_body(text, stream=True) if dialect == "openai" else anthropic_body(text, stream=True)
    headers = {"x-echo-hang": "stream"}
    started = time.monotonic()
    with httpx.stream("POST", stack.proxy.url + PATHS[dialect], json=body, headers=headers, timeout=60) as answer:
        pieces = answer.iter_raw()
        first = next(pieces)
        waited = time.monotonic() - started
        rest = b"".join(pieces)
    assert first and waited < 2.0, f"the first bytes came after {waited:.1f} s"
    assert (first + rest).startswith(b"data: " if dialect == "openai" else b"event: message_start")
    assert b"sent nothing for 3 s" in rest, "and the timeout still ends the stream"


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_stream_that_stops_ends_with_an_error_event(stack: Stack, dialect: str) -> None:
    body = openai_body(TEXT, stream=True) if dialect == "openai" else anthropic_body(TEXT, stream=True)
    answer = httpx.post(stack.proxy.url + PATHS[dialect], json=body, headers={"x-echo-hang": "stream"}, timeout=60)
    assert answer.status_code == 200
    events = [json.loads(data) for data in sse_data(answer.text) if data.strip() != "[DONE]"]
    last = events[-1]
    assert last.get("type", "error") == "error" and "error" in last, last
    assert "sent nothing for 3 s" in last["error"]["message"]


def test_unreachable_upstream_is_a_502(stack: Stack) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    proxy = stack.procs.proxy(dead, stack.db_url, stack.redis_url, timeout=3.0)
    answer = httpx.post(proxy.url + PATHS["anthropic"], json=anthropic_body(TEXT, stream=False), timeout=30)
    assert answer.status_code == 502, answer.text
    assert answer.json()["error"]["message"].startswith("the upstream could not be reached")
    proxy.stop()


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_caller_credentials_reach_the_upstream_but_not_the_logs(stack: Stack, dialect: str) -> None:
    for stream in (False, True):
        body = openai_body(TEXT, stream=stream) if dialect == "openai" else anthropic_body(TEXT, stream=stream)
        answer = httpx.post(stack.proxy.url + PATHS[dialect], json=body, headers=SECRETS, timeout=30)
        assert read_answer(dialect, answer, stream=stream).texts[0] == TEXT
        received = {k.lower(): v for k, v in stack.upstream.received()[-1]["headers"].items()}
        for name, value in SECRETS.items():
            assert received[name.lower()] == value, f"{name} was not forwarded"
    logs = stack.proxy.logs()
    assert f"POST {PATHS[dialect]}" in logs, "the proxy's logs were captured (access log)"
    assert "DEBUG" in logs and "accord.proxy" in logs, "the proxy logged at DEBUG"
    for name, value in SECRETS.items():
        if name != "anthropic-version":
            assert value not in logs, f"the {name} header leaked into the proxy's logs"
            assert value.split()[-1] not in logs, f"the {name} secret leaked into the proxy's logs"
    for original in ORIGINALS:
        assert original not in logs, "an original leaked into the proxy's logs"
