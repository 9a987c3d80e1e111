"""A real local "model" for the proxy tests: it answers with the text it received, so a test can compare.

Run as ``python upstream_echo.py PORT [SEED]``. The answer to a chat request is the last message's text,
OpenAI or Anthropic shaped; with ``"tools"`` in the request it also calls a tool ``echo`` with
``{"echo": <text>}``. Streams go out in randomly sized pieces: deltas of 1-7 characters (so tokens
are split anywhere) and network writes cut at random bytes (so events and UTF-8 characters are too).
Every request is recorded (headers and body) and listed by ``GET /_received``.

Headers steer it: ``x-echo-status: 429`` answers with that status and a JSON error naming the text,
``x-echo-hang: headers`` never answers, ``x-echo-hang: stream`` stops after a few events,
``x-echo-seed`` fixes the random pieces, ``x-echo-crlf: 1`` ends SSE lines with CRLF.

The pieces are random but reproducible: each request's generator is seeded from the run's seed (set by
``POST /_seed``, per test) and the request body, so the same test cuts the same way however its requests
interleave. Every request is recorded with the seed it was cut by.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import random
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

RECEIVED: list[dict[str, Any]] = []
SEED = [0]
TEXT_PARTS = ("text", "input_text")


def last_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1].get("content")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if part.get("type") in TEXT_PARTS)


def pieces(text: str, rng: random.Random, most: int = 7) -> Iterator[str]:
    at = 0
    while at < len(text):
        size = rng.randint(1, most)
        yield text[at : at + size]
        at += size


def sse(data: object, event: str | None = None, *, crlf: bool = False) -> bytes:
    line = json.dumps(data) if not isinstance(data, str) else data
    text = (f"event: {event}\n" if event else "") + f"data: {line}\n\n"
    return (text.replace("\n", "\r\n") if crlf else text).encode()


async def cut(events: Iterator[bytes], rng: random.Random, hang_after: int | None) -> AsyncIterator[bytes]:
    """The events as network writes cut at random byte positions; with ``hang_after``, then silence."""
    stream = b"".join(events)
    at = 0
    writes = 0
    while at < len(stream):
        size = rng.randint(1, 40)
        yield stream[at : at + size]
        at += size
        writes += 1
        if hang_after is not None and writes >= hang_after:
            await asyncio.sleep(3600)
        await asyncio.sleep(0)


def openai_answer(body: dict[str, Any], text: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if body.get("tools"):
        arguments = json.dumps({"echo": text})
        message["tool_calls"] = [
            {"id": "call_1", "type": "function", "function": {"name": "echo", "arguments": arguments}}
        ]
    choices = [{"index": i, "message": message, "finish_reason": "stop"} for i in range(int(body.get("n", 1)))]
    return {
        "id": "chatcmpl-echo",
        "object": "chat.completion",
        "created": 1,
        "model": body.get("model"),
        "choices": choices,
    }


def openai_events(body: dict[str, Any], text: str, rng: random.Random, crlf: bool) -> Iterator[bytes]:
    base = {"id": "chatcmpl-echo", "object": "chat.completion.chunk", "created": 1, "model": body.get("model")}
    count = int(body.get("n", 1))
    arguments = json.dumps({"echo": text}) if body.get("tools") else None
    for choice in range(count):
        yield sse({**base, "choices": [{"index": choice, "delta": {"role": "assistant", "content": ""}}]}, crlf=crlf)
    for choice, piece in interleave(text, count, rng):
        yield sse({**base, "choices": [{"index": choice, "delta": {"content": piece}}]}, crlf=crlf)
    for choice in range(count):
        if arguments is not None:
            head = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "echo", "arguments": ""}}
            yield sse({**base, "choices": [{"index": choice, "delta": {"tool_calls": [head]}}]}, crlf=crlf)
            for piece in pieces(arguments, rng):
                call = {"index": 0, "function": {"arguments": piece}}
                yield sse({**base, "choices": [{"index": choice, "delta": {"tool_calls": [call]}}]}, crlf=crlf)
        yield sse({**base, "choices": [{"index": choice, "delta": {}, "finish_reason": "stop"}]}, crlf=crlf)
    yield sse("[DONE]", crlf=crlf)


def interleave(text: str, count: int, rng: random.Random) -> list[tuple[int, str]]:
    """Every choice's pieces of ``text``, choices interleaved at random, each choice's pieces in order."""
    queues = {choice: list(pieces(text, rng)) for choice in range(count)}
    out: list[tuple[int, str]] = []
    while any(queues.values()):
        choice = rng.choice([c for c, queue in queues.items() if queue])
        out.append((choice, queues[choice].pop(0)))
    return out


def anthropic_answer(body: dict[str, Any], text: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    if body.get("tools"):
        content.append({"type": "tool_use", "id": "toolu_1", "name": "echo", "input": {"echo": text}})
    return {"id": "msg_echo", "type": "message", "role": "assistant", "model": body.get("model"), "content": content}


def anthropic_events(body: dict[str, Any], text: str, rng: random.Random, crlf: bool) -> Iterator[bytes]:
    message = {**anthropic_answer(body, text), "content": []}
    yield sse({"type": "message_start", "message": message}, "message_start", crlf=crlf)
    yield sse(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        "content_block_start",
        crlf=crlf,
    )
    yield sse({"type": "ping"}, "ping", crlf=crlf)
    for piece in pieces(text, rng):
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        yield sse(delta, "content_block_delta", crlf=crlf)
    yield sse({"type": "content_block_stop", "index": 0}, "content_block_stop", crlf=crlf)
    if body.get("tools"):
        block = {"type": "tool_use", "id": "toolu_1", "name": "echo", "input": {}}
        yield sse({"type": "content_block_start", "index": 1, "content_block": block}, "content_block_start", crlf=crlf)
        for piece in pieces(json.dumps({"echo": text}), rng):
            delta = {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": piece},
            }
            yield sse(delta, "content_block_delta", crlf=crlf)
        yield sse({"type": "content_block_stop", "index": 1}, "content_block_stop", crlf=crlf)
    yield sse({"type": "message_delta", "delta": {"stop_reason": "end_turn"}}, "message_delta", crlf=crlf)
    yield sse({"type": "message_stop"}, "message_stop", crlf=crlf)


def error_answer(status: int, text: str, anthropic: bool) -> Response:
    message = f"rate limited while reading: {text}"
    body = (
        {"type": "error", "error": {"type": "rate_limit_error", "message": message}}
        if anthropic
        else {"error": {"message": message, "type": "rate_limit_error", "code": "rate_limited"}}
    )
    return JSONResponse(body, status, headers={"retry-after": "7", "x-echo-marker": "kept"})


async def chat(request: Request) -> Response:
    raw = await request.body()
    seed = request.headers.get("x-echo-seed") or f"{SEED[0]}:{hashlib.sha256(raw).hexdigest()}"
    record = {"path": request.url.path, "headers": dict(request.headers), "body": raw.decode(), "seed": seed}
    RECEIVED.append(record)
    body = json.loads(raw)
    anthropic = request.url.path.startswith("/v1/messages")
    hang = request.headers.get("x-echo-hang")
    if hang == "headers":
        await asyncio.sleep(3600)
    text = last_text(body)
    if status := request.headers.get("x-echo-status"):
        return error_answer(int(status), text, anthropic)
    rng = random.Random(seed)
    pad = "x" * int(request.headers.get("x-echo-pad", "0"))  # a large answer, on request
    if not body.get("stream"):
        answer = anthropic_answer(body, text) if anthropic else openai_answer(body, text)
        return JSONResponse({**answer, "pad": pad} if pad else answer)
    crlf = request.headers.get("x-echo-crlf") == "1"
    events = (anthropic_events if anthropic else openai_events)(body, text, rng, crlf)
    if pad:
        events = itertools.chain([sse({"pad": pad}, "ping", crlf=crlf)], events)
    stream = cut(events, rng, 3 if hang == "stream" else None)
    return StreamingResponse(stream, media_type="text/event-stream", headers={"x-echo-marker": "kept"})


async def models(request: Request) -> Response:
    """OpenAI's model list, with what the request carried (to check what the proxy passes on)."""
    RECEIVED.append({"path": request.url.path, "query": request.url.query, "headers": dict(request.headers)})
    return JSONResponse({"object": "list", "data": [{"id": "gpt-echo", "object": "model", "owned_by": "echo"}]})


async def reseed(request: Request) -> Response:
    SEED[0] = int((await request.json())["seed"])
    return JSONResponse({"seed": SEED[0]})


async def received(_request: Request) -> Response:
    return JSONResponse(RECEIVED)


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/messages", chat, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/_received", received, methods=["GET"]),
        Route("/_seed", reseed, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
)

if __name__ == "__main__":
    SEED[0] = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", timeout_graceful_shutdown=1)
