"""Real processes for the proxy tests: the echo upstream and `accord proxy` instances, plus request helpers.

`Processes` starts children (tests.harness processes) on free ports, waits until they answer /healthz,
and stops every one of them on close. Logs go to files so a test can search them.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from accord.vault import Vault, VaultStats
from tests.harness import EchoUpstream, HttpProcess, PostgresServer, RedisServer, free_port, http_process, running
from tests.proxy.echo_seed import current_seed, track_upstream

HERE = Path(__file__).parent
SHIM = HERE / "vault_cli_shim.py"
ECHO = HERE / "upstream_echo.py"
TOKEN_RE = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_[0-9]{3,}\b")


Child = HttpProcess  # a proxy or the echo upstream (EchoUpstream adds `received()`)


def child_env(db_url: str = "", redis_url: str = "", *, debug: bool = False) -> dict[str, str]:
    urls = {"ACCORD_DB_URL": db_url, "ACCORD_REDIS_URL": redis_url}
    env = http_process.child_env(urls | {"ACCORD_START_TIMEOUT": "20", "COLUMNS": "200"})
    if debug:
        env["ACCORD_TEST_DEBUG_LOGS"] = "1"
    return env


@dataclass
class Processes:
    """The proxies and upstreams of one test or module, all in `workdir`; `close` stops every one."""

    workdir: Path
    children: list[HttpProcess] = field(default_factory=list)
    made: int = 0

    def upstream(self) -> EchoUpstream:
        upstream = EchoUpstream(self.workdir, ECHO, sys.executable, seed=current_seed())
        self.start(upstream)
        return track_upstream(upstream)

    def proxy(self, upstream: str, db_url: str, redis_url: str, **options: Any) -> HttpProcess:
        """A started proxy; ``options`` as for ``proxy_child``."""
        return self.start(self.proxy_child(upstream, db_url, redis_url, **options))

    def proxy_child(
        self,
        upstream: str,
        db_url: str,
        redis_url: str,
        *,
        timeout: float = 30.0,
        debug: bool = False,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> HttpProcess:
        """A proxy not started yet (to start several at once with ``start_all``); ``extra``: more options."""
        port = free_port()
        args = ["proxy", "--upstream", upstream, "--port", str(port), "--timeout", str(timeout), *extra]
        args += ["--log-level", "debug" if debug else "warning"]
        self.made += 1
        env = child_env(db_url, redis_url, debug=debug) | (env or {})
        command = [sys.executable, str(SHIM), *args]
        return HttpProcess(self.workdir, command, env, port=port, name=f"proxy-{self.made}")

    def start(self, child: HttpProcess) -> HttpProcess:
        self.start_all([child])
        return child

    def start_all(self, children: list[HttpProcess]) -> None:
        """Launch them all, then wait for each: several proxies then start side by side, as in a fleet."""
        self.children.extend(children)
        for child in children:
            child.launch()
        for child in children:
            child.wait_healthy()

    def close(self) -> None:
        for child in self.children:
            child.close()


@dataclass
class Stack:
    """A database, a private Redis, the echo upstream and one proxy, shared by a module's tests."""

    db_url: str
    redis_url: str
    upstream: EchoUpstream
    proxy: HttpProcess
    procs: Processes

    def stats(self) -> VaultStats:
        async def read() -> VaultStats:
            async with await Vault.connect(self.db_url, self.redis_url, sweep=False) as vault:
                return await vault.stats()

        return asyncio.run(read())

    def upstream_count(self) -> int:
        return len(self.upstream.received())


@contextmanager
def module_stack(
    workdir: Path, pg_server: PostgresServer, *, timeout: float = 30.0, debug: bool = False
) -> Iterator[Stack]:
    name = f"proxy_{workdir.name.lower().replace('-', '_')[:30]}_{free_port()}"
    with running(RedisServer(workdir / "redis")) as redis:
        db_url = pg_server.create_database(name)
        procs = Processes(workdir)
        try:
            upstream = procs.upstream()
            proxy = procs.proxy(upstream.url, db_url, redis.url, timeout=timeout, debug=debug)
            yield Stack(db_url, redis.url, upstream, proxy, procs)
        finally:
            procs.close()
            pg_server.drop_database(name)


def openai_body(text: str, *, stream: bool, system: str | None = None, **extra: Any) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    return {"model": "gpt-echo", "stream": stream, "messages": [*messages, {"role": "user", "content": text}], **extra}


def anthropic_body(text: str, *, stream: bool, system: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"model": "claude-echo", "max_tokens": 1024, "stream": stream, **extra}
    body["messages"] = [{"role": "user", "content": [{"type": "text", "text": text}]}]
    if system:
        body["system"] = system
    return body


@dataclass
class Answer:
    """What a client gets: texts by choice (OpenAI) or content block (Anthropic), and tool-call arguments."""

    texts: dict[int, str] = field(default_factory=dict)
    tools: dict[int, str] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)


def sse_data(body: str) -> list[str]:
    """The data of every event, whichever line endings the stream used."""
    blocks = re.split(r"\r\n\r\n|\n\n|\r\r", body)
    found = []
    for block in blocks:
        lines = [line[5:].removeprefix(" ") for line in re.split(r"\r\n|\n|\r", block) if line.startswith("data:")]
        if lines:
            found.append("\n".join(lines))
    return found


def read_answer(dialect: str, response: httpx.Response, *, stream: bool) -> Answer:
    assert response.status_code == 200, response.text
    if not stream:
        return _openai_whole(response.json()) if dialect == "openai" else _anthropic_whole(response.json())
    assert response.headers["content-type"].startswith("text/event-stream"), response.headers
    events = [json.loads(data) for data in sse_data(response.text) if data.strip() != "[DONE]"]
    return _openai_stream(events) if dialect == "openai" else _anthropic_stream(events)


def _openai_whole(body: dict[str, Any]) -> Answer:
    answer = Answer()
    for choice in body["choices"]:
        answer.texts[choice["index"]] = choice["message"]["content"]
        for call in choice["message"].get("tool_calls") or []:
            answer.tools[choice["index"]] = call["function"]["arguments"]
    return answer


def _openai_stream(events: list[dict[str, Any]]) -> Answer:
    answer = Answer()
    for event in events:
        if "error" in event:
            answer.errors.append(event)
        for choice in event.get("choices", []):
            index, delta = choice["index"], choice.get("delta", {})
            answer.texts[index] = answer.texts.get(index, "") + (delta.get("content") or "")
            for call in delta.get("tool_calls") or []:
                answer.tools[index] = answer.tools.get(index, "") + call["function"].get("arguments", "")
    return answer


def _anthropic_whole(body: dict[str, Any]) -> Answer:
    answer = Answer()
    for index, block in enumerate(body["content"]):
        if block["type"] == "text":
            answer.texts[index] = block["text"]
        elif block["type"] == "tool_use":
            answer.tools[index] = json.dumps(block["input"])
    return answer


def _anthropic_stream(events: list[dict[str, Any]]) -> Answer:
    answer = Answer()
    stopped: set[int] = set()
    for event in events:
        if event["type"] == "error":
            answer.errors.append(event)
        elif event["type"] == "content_block_delta":
            index, delta = event["index"], event["delta"]
            assert index not in stopped, f"delta for block {index} after its content_block_stop"
            if delta["type"] == "text_delta":
                answer.texts[index] = answer.texts.get(index, "") + delta["text"]
            else:
                answer.tools[index] = answer.tools.get(index, "") + delta["partial_json"]
        elif event["type"] == "content_block_stop":
            stopped.add(event["index"])
    return answer
