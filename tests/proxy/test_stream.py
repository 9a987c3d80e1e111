"""Every text the model reads is masked, and every answer field comes back unmasked: conversations with
tool calls and tool results, system prompts, several choices, CRLF event streams, tool-call arguments
(JSON-escaped originals), typed token look-alikes, and a custom pattern set in the shared config while
the proxy runs. Real `accord proxy` and echo upstream processes on PostgreSQL and Redis, shared by the module.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import accord
from accord.vault import VaultSettings
from tests.harness import PostgresServer
from tests.proxy.echo_seed import set_seed
from tests.proxy.proxy_harness import Child, Stack, anthropic_body, module_stack, openai_body, read_answer

ARN_A = "arn:aws:eks:us-east-1:123456789012:cluster/alpha"
ARN_B = "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/beta-ep"
ROLE = "arn:aws:iam::123456789012:role/Deployer"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIBVgIBADANBgkqhkiG9w0BAQEFAASCAUAwggE8AgEAAkEAq7BFUpkG\n-----END PRIVATE KEY-----"
ORIGINALS = (ARN_A, ARN_B, ROLE, "lead@example.com", "oncall@example.com", "10.1.2.3", "MIIBVgIBADANBgkq")
TEXT = f"Deploy with {ROLE} to {ARN_A}; the key is\n{PEM}\nask lead@example.com (typed AWS_EKS_CLUSTER_001, 한국어)"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, pg_server: PostgresServer) -> Iterator[Stack]:
    with module_stack(tmp_path_factory.mktemp("proxy-stream"), pg_server) as shared:
        yield shared


def post(proxy: Child, dialect: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    path = "/v1/chat/completions" if dialect == "openai" else "/v1/messages"
    return httpx.post(proxy.url + path, json=body, headers=headers, timeout=60)


def assert_nothing_leaked(upstream: Child, since: int) -> list[dict[str, Any]]:
    """The bodies the upstream received after the first ``since`` requests, none holding an original."""
    bodies = [json.loads(record["body"]) for record in upstream.received()[since:]]
    for body in bodies:
        raw = json.dumps(body, ensure_ascii=False)
        leaked = [original for original in ORIGINALS if original in raw]
        assert not leaked, f"the upstream saw {leaked}"
    return bodies


@pytest.mark.parametrize("stream", [False, True])
def test_openai_conversation_with_tools_and_choices(stack: Stack, stream: bool) -> None:
    upstream, proxy, since = stack.upstream, stack.proxy, stack.upstream_count()
    arguments = json.dumps({"cluster": ARN_A, "notify": ["oncall@example.com"], "count": 2})
    body = openai_body(TEXT, stream=stream, system="Ops lead is lead@example.com", n=2, tools=[{"type": "function"}])
    body["messages"][1:1] = [
        {
            "role": "user",
            "content": [{"type": "text", "text": f"check {ARN_B}"}, {"type": "image_url", "image_url": {}}],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": arguments}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "owner oncall@example.com at 10.1.2.3"},
    ]
    answer = read_answer("openai", post(proxy, "openai", body, **{"x-echo-crlf": "1"}), stream=stream)
    assert answer.texts == {0: TEXT, 1: TEXT}
    assert {index: json.loads(arguments) for index, arguments in answer.tools.items()} == {
        0: {"echo": TEXT},
        1: {"echo": TEXT},
    }
    [sent] = assert_nothing_leaked(upstream, since)
    history = sent["messages"][2]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(history)["cluster"].startswith("AWS_EKS_CLUSTER_"), "tool-call arguments are masked as JSON"
    assert json.loads(history)["count"] == 2
    assert "VAULT_LITERAL_" in sent["messages"][-1]["content"], "a typed token look-alike is escaped"


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_conversation_with_tools_and_documents(stack: Stack, stream: bool) -> None:
    upstream, proxy, since = stack.upstream, stack.proxy, stack.upstream_count()
    body = anthropic_body(TEXT, stream=stream, tools=[{"name": "echo"}])
    body["system"] = [{"type": "text", "text": "Ops lead is lead@example.com"}]
    body["messages"][0:0] = [
        {"role": "user", "content": f"check {ARN_B}"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": {"cluster": ARN_A, "n": 2}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": [{"type": "text", "text": "owner oncall@example.com"}],
                },
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "host 10.1.2.3"}},
            ],
        },
    ]
    answer = read_answer("anthropic", post(proxy, "anthropic", body), stream=stream)
    assert answer.texts == {0: TEXT}
    assert json.loads(answer.tools[1]) == {"echo": TEXT}
    [sent] = assert_nothing_leaked(upstream, since)
    assert sent["messages"][1]["content"][0]["input"]["cluster"].startswith("AWS_EKS_CLUSTER_")
    assert sent["system"][0]["text"].startswith("Ops lead is EMAIL_")


def test_answers_without_sensitive_values_pass_through(stack: Stack) -> None:
    upstream, proxy, since = stack.upstream, stack.proxy, stack.upstream_count()
    text = "Nothing secret here: just words, ERROR_CODE_500 and a::b."
    for stream in (False, True):
        answer = read_answer("openai", post(proxy, "openai", openai_body(text, stream=stream)), stream=stream)
        assert answer.texts[0] == text
    sent = assert_nothing_leaked(upstream, since)
    assert [body["messages"][0]["content"] for body in sent] == [text, text]


def test_custom_pattern_set_in_the_shared_config_applies_while_running(stack: Stack) -> None:
    """Last in the module: it changes the shared config."""
    upstream, proxy = stack.upstream, stack.proxy
    text = "Ticket TCK-40213 is about alpha"

    async def set_pattern() -> None:
        async with await accord.connect(stack.db_url, stack.redis_url, groups=[VaultSettings], watch=False) as cfg:
            await cfg.set("vault.custom_patterns", {"TICKET": r"TCK-\d{5}\b"})

    asyncio.run(set_pattern())
    deadline = time.monotonic() + 30
    while True:
        answer = read_answer("anthropic", post(proxy, "anthropic", anthropic_body(text, stream=True)), stream=True)
        assert answer.texts[0] == text
        if "TICKET_" in json.loads(upstream.received()[-1]["body"])["messages"][0]["content"][0]["text"]:
            break
        assert time.monotonic() < deadline, "the proxy never picked up the custom pattern"
        time.sleep(0.2)
    assert "TCK-40213" not in upstream.received()[-1]["body"]


def test_the_echo_upstream_cuts_alike_for_one_seed(stack: Stack, echo_seed: int) -> None:
    """The chunking the proxy is tested against is reproducible: the same request under the test's seed is cut
    the same way every time, and a different seed cuts it differently."""
    body = openai_body(TEXT, stream=True, n=2)
    url = stack.upstream.url + "/v1/chat/completions"
    first, again = (httpx.post(url, json=body, timeout=60).text for _ in range(2))
    assert first == again
    assert stack.upstream.received()[-1]["seed"].startswith(f"{echo_seed}:")
    set_seed(echo_seed + 1)
    assert httpx.post(url, json=body, timeout=60).text != first
