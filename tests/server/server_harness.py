"""The settings the server tests declare, and small HTTP helpers (the server process is tests.harness's).

The server validates by the schema an application registered in the store, so every test first runs
`declare()` (one `accord.connect(groups=...)`), then starts servers on the same database and Redis.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

import accord
from accord import Setting, SettingsGroup
from tests.harness import AccordServer

Serve = Callable[..., AccordServer]


class Llm(SettingsGroup, category="llm"):
    model: str = Setting("gpt-4o", description="Chat model")
    temperature: float = Setting(0.5, ge=0, le=2)
    max_output: int = Setting(1024, ge=1)
    openai_api_key: str = Setting("")  # secret because of its name
    org_id: str = Setting("", secret=True)  # secret because it is declared so


class Embedding(SettingsGroup, category="embedding"):
    model: str = Setting("BAAI/bge-m3")
    batch_size: int = Setting(2048, ge=1)


GROUPS: list[type[SettingsGroup]] = [Llm, Embedding]


def declare(db_url: str, redis_url: str) -> None:
    """Register the schema of GROUPS in the store, as an application does on connect."""

    async def run() -> None:
        async with await accord.connect(db_url, redis_url, groups=GROUPS, watch=False):
            pass

    asyncio.run(run())


@dataclass(frozen=True)
class Stack:
    """The database and Redis a group of servers share."""

    db_url: str
    redis_url: str


def create_token(admin: httpx.Client, name: str, rules: list[str], *, reveal: bool = False) -> str:
    answer = admin.post("/api/tokens", json={"name": name, "rules": rules, "reveal_secrets": reveal})
    assert answer.status_code == 201, answer.text
    secret: str = answer.json()["secret"]
    return secret


def revision(client: httpx.Client) -> int:
    """The last revision the server applied (every write through it advances it at once)."""
    answer = client.get("/api/config")
    assert answer.status_code == 200, answer.text
    value: int = answer.json()["revision"]
    return value


def assert_error_body(answer: httpx.Response, status: int | tuple[int, ...]) -> dict[str, Any]:
    wanted = status if isinstance(status, tuple) else (status,)
    assert answer.status_code in wanted, f"{answer.status_code} not in {wanted}: {answer.text[:500]}"
    body: dict[str, Any] = answer.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("detail"), str) and body["detail"], body
    return body


@dataclass
class SseEvent:
    id: int | None
    event: str
    data: dict[str, Any]


def sse_events(response: httpx.Response, *, timeout: float = 30.0) -> Iterator[SseEvent]:
    """Parse a text/event-stream; stop with an AssertionError once ``timeout`` passes (keepalives wake us)."""
    deadline = time.monotonic() + timeout
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if time.monotonic() > deadline:
            raise AssertionError(f"no expected server-sent event within {timeout}s")
        if line:
            if not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
            continue
        if "data" in fields:
            event_id = int(fields["id"]) if "id" in fields else None
            yield SseEvent(event_id, fields.get("event", "message"), json.loads(fields["data"]))
        fields = {}


def collect_until(events: Iterator[SseEvent], done: Callable[[SseEvent], bool]) -> list[SseEvent]:
    """Events up to and including the first one ``done`` accepts."""
    seen = []
    for event in events:
        seen.append(event)
        if done(event):
            return seen
    raise AssertionError(f"stream ended before the expected event; got {seen}")


def counter_total(http: httpx.Client, metric: str) -> float:
    """A counter's value as the server's /metrics shows it (``metric`` without the ``_total``)."""
    found = re.search(rf"^{re.escape(metric)}_total (\S+)$", http.get("/metrics").text, re.MULTILINE)
    assert found, f"{metric} is in /metrics"
    return float(found.group(1))


def client_of(server: AccordServer) -> Iterator[httpx.Client]:
    """A plain client of ``server`` (no token), for a fixture to yield."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client
