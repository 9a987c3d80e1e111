"""The proxy's stream rewriting in process: SSE parsing at every byte split, and tokens split at every
position across two deltas restored whole, in OpenAI and Anthropic streams (a real vault issues the tokens).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from accord.proxy.anthropic import AnthropicStream
from accord.proxy.openai import OpenAIStream
from accord.proxy.sse import SseEvent, SseParser
from accord.proxy.texts import Texts, Unmasker, mask_texts
from accord.vault import Vault

ORIGINAL = 'Cluster arn:aws:eks:us-east-1:123456789012:cluster/prod, mail ops@example.com, "quoted" é 한국'
PEM = "-----BEGIN PRIVATE KEY-----\nMIIBVgIBADANBgkqhkiG9w0BAQEFAASCAUAwggE8AgEAAkEAq7BFUpkG\n-----END PRIVATE KEY-----"


@pytest.fixture
async def vault(sqlite_url: str) -> AsyncIterator[Vault]:
    async with await Vault.connect(sqlite_url, "", sweep=False) as opened:
        yield opened


async def masked(vault: Vault, text: str) -> tuple[str, Unmasker]:
    [text_out], mappings = await mask_texts(vault, [text], "default")
    return text_out, Unmasker(vault.grammar, mappings)


def parse_all(stream: bytes, cuts: list[int]) -> list[SseEvent]:
    parser = SseParser()
    events: list[SseEvent] = []
    last = 0
    for cut in [*cuts, len(stream)]:
        events += parser.feed(stream[last:cut])
        last = cut
    return events + parser.finish()


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_sse_parser_gives_the_same_events_wherever_the_bytes_are_cut(newline: str) -> None:
    text = 'event: a\ndata: {"x": "é한"}\n\n: keep-alive\n\nid: 7\ndata: one\ndata: two\n\ndata: [DONE]\n\n'
    stream = text.replace("\n", newline).encode()
    whole = parse_all(stream, [])
    assert [event.data for event in whole] == ['{"x": "é한"}', None, "one\ntwo", "[DONE]"]
    assert whole[0].event == "a" and whole[2].fields[0] == ("id", "7")
    for cut in range(1, len(stream)):
        assert parse_all(stream, [cut]) == whole, f"cut at byte {cut}"
    assert parse_all(stream, list(range(1, len(stream)))) == whole
    assert b"".join(event.encode() for event in whole) == text.encode()


def openai_chunk(index: int, delta: dict[str, object], finish: str | None = None) -> SseEvent:
    choice = {"index": index, "delta": delta, "finish_reason": finish}
    return SseEvent.of(json.dumps({"id": "c", "object": "chat.completion.chunk", "choices": [choice]}))


def openai_collect(events: list[SseEvent]) -> tuple[dict[int, str], dict[int, str]]:
    texts: dict[int, str] = {}
    arguments: dict[int, str] = {}
    finished: set[int] = set()
    for event in events:
        if event.data == "[DONE]":
            continue
        for choice in json.loads(event.data or "{}")["choices"]:
            index, delta = choice["index"], choice["delta"]
            assert index not in finished, "text after the choice's finishing chunk"
            texts[index] = texts.get(index, "") + delta.get("content", "")
            for call in delta.get("tool_calls", []):
                arguments[index] = arguments.get(index, "") + call["function"]["arguments"]
            if choice.get("finish_reason"):
                finished.add(index)
    return texts, arguments


async def test_openai_stream_restores_a_token_split_at_every_position(vault: Vault) -> None:
    text, unmasker = await masked(vault, ORIGINAL + "\n" + PEM)
    arguments = json.dumps({"echo": text})
    assert "AWS_EKS_CLUSTER_" in text and "PEM_PRIVATE_KEY_" in text
    for cut in range(len(text) + 1):
        rewriter = OpenAIStream(unmasker)
        upstream = [
            openai_chunk(0, {"content": text[:cut]}),
            openai_chunk(1, {"tool_calls": [{"index": 0, "function": {"arguments": arguments[: cut + 1]}}]}),
            openai_chunk(0, {"content": text[cut:]}),
            openai_chunk(1, {"tool_calls": [{"index": 0, "function": {"arguments": arguments[cut + 1 :]}}]}),
            openai_chunk(0, {}, "stop"),
            openai_chunk(1, {}, "tool_calls"),
            SseEvent.of("[DONE]"),
        ]
        out = [event for incoming in upstream for event in rewriter.rewrite(incoming)] + rewriter.finish()
        texts, calls = openai_collect(out)
        assert texts[0] == ORIGINAL + "\n" + PEM, f"cut at {cut}"
        assert json.loads(calls[1]) == {"echo": ORIGINAL + "\n" + PEM}, f"cut at {cut}"
        assert out[-1].data == "[DONE]"


async def test_openai_stream_without_finish_flushes_before_done(vault: Vault) -> None:
    text, unmasker = await masked(vault, "mail ops@example.com")
    rewriter = OpenAIStream(unmasker)
    out = rewriter.rewrite(openai_chunk(0, {"content": text[:-1]}))
    assert "ops@example.com" not in json.dumps([json.loads(event.data or "") for event in out]), "the token is held"
    out += rewriter.rewrite(openai_chunk(0, {"content": text[-1:]}))
    out += rewriter.rewrite(SseEvent.of("[DONE]"))
    assert openai_collect(out)[0][0] == "mail ops@example.com"
    assert out[-1].data == "[DONE]"


def anthropic_event(kind: str, **fields: object) -> SseEvent:
    return SseEvent.of(json.dumps({"type": kind, **fields}), kind)


async def test_anthropic_stream_restores_a_token_split_at_every_position(vault: Vault) -> None:
    text, unmasker = await masked(vault, ORIGINAL + "\n" + PEM)
    partial = json.dumps({"echo": text})
    for cut in range(len(text) + 1):
        rewriter = AnthropicStream(unmasker)
        upstream = [
            anthropic_event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
            anthropic_event("content_block_delta", index=0, delta={"type": "text_delta", "text": text[:cut]}),
            anthropic_event("content_block_delta", index=0, delta={"type": "text_delta", "text": text[cut:]}),
            anthropic_event("content_block_stop", index=0),
            anthropic_event("content_block_start", index=1, content_block={"type": "tool_use", "input": {}}),
            anthropic_event(
                "content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": partial[:cut]}
            ),
            anthropic_event(
                "content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": partial[cut:]}
            ),
            anthropic_event("content_block_stop", index=1),
            anthropic_event("message_stop"),
        ]
        out = [event for incoming in upstream for event in rewriter.rewrite(incoming)] + rewriter.finish()
        blocks: dict[int, str] = {}
        stopped: set[int] = set()
        for event in out:
            message = json.loads(event.data or "")
            assert event.event == message["type"]
            if message["type"] == "content_block_delta":
                assert message["index"] not in stopped, "a delta after its block's stop"
                delta = message["delta"]
                blocks[message["index"]] = blocks.get(message["index"], "") + delta.get(
                    "text", delta.get("partial_json", "")
                )
            elif message["type"] == "content_block_stop":
                stopped.add(message["index"])
        assert blocks[0] == ORIGINAL + "\n" + PEM, f"cut at {cut}"
        assert json.loads(blocks[1]) == {"echo": ORIGINAL + "\n" + PEM}, f"cut at {cut}"


async def test_request_texts_are_masked_in_one_call_and_split_back(vault: Vault) -> None:
    body = {"a": "ops@example.com", "b": ["x", "ops@example.com and 10.0.0.1"], "c": json.dumps({"k": PEM})}
    texts = Texts()
    texts.add(body, "a")
    texts.add_leaves(body, "b")
    texts.add_json_text(body, "c")
    before = await vault.stats()
    out, mappings = await mask_texts(vault, texts.values(), "default")
    assert texts.apply(out)
    email = next(token for token, original in mappings.items() if original == "ops@example.com")
    assert body["a"] == email and body["b"] == ["x", f"{email} and IPV4_001"]
    assert json.loads(str(body["c"]))["k"].startswith("PEM_PRIVATE_KEY_")
    assert mappings[json.loads(str(body["c"]))["k"]] == PEM, "the PEM key is stored unescaped"
    assert (await vault.stats()).total == before.total + 3
    # A value running across two texts (a PEM block begun in one and ended in the next) falls back to one
    # mask call per text, and each text still comes back in its own place.
    head, tail = PEM[:40], PEM[40:]
    out, _ = await mask_texts(vault, [head, "ops@example.com", tail], "default")
    assert out == [head, email, tail]
