"""Real processes for the proxy tests: the echo upstream and `accord proxy` instances, plus request helpers.

`Processes` starts children on free ports, waits until they answer /healthz, and stops every one of
them on close. Logs go to files so a test can search them.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from accord.vault import Vault, VaultStats
from tests.proxy.echo_seed import current_seed, track_upstream
from tests.servers import PostgresServer, RedisServer, free_port

HERE = Path(__file__).parent
SHIM = HERE / "vault_cli_shim.py"
ECHO = HERE / "upstream_echo.py"
START_DEADLINE_S = 60.0
TOKEN_RE = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_[0-9]{3,}\b")


@dataclass
class Child:
    name: str
    command: list[str]
    env: dict[str, str]
    workdir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def launch(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command, cwd=self.workdir, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )

    def wait_healthy(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{self.name} not healthy within {START_DEADLINE_S}s:\n{self.logs()[-3000:]}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def received(self) -> list[dict[str, Any]]:
        """What the echo upstream recorded (headers and body of every request)."""
        answer = httpx.get(f"{self.url}/_received", timeout=10)
        answer.raise_for_status()
        records: list[dict[str, Any]] = answer.json()
        return records


def child_env(db_url: str = "", redis_url: str = "", *, debug: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_") or k == "ACCORD_MASTER_KEY"}
    env |= {"ACCORD_DB_URL": db_url, "ACCORD_REDIS_URL": redis_url, "ACCORD_START_TIMEOUT": "20", "COLUMNS": "200"}
    if debug:
        env["ACCORD_TEST_DEBUG_LOGS"] = "1"
    return env


@dataclass
class Processes:
    workdir: Path
    children: list[Child] = field(default_factory=list)
    made: int = 0

    def upstream(self) -> Child:
        port = free_port()
        command = [sys.executable, str(ECHO), str(port), str(current_seed())]
        child = Child("upstream", command, child_env(), self.workdir, port)
        return track_upstream(self.start(child))

    def proxy(
        self,
        upstream: str,
        db_url: str,
        redis_url: str,
        *,
        timeout: float = 30.0,
        debug: bool = False,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> Child:
        child = self.proxy_child(upstream, db_url, redis_url, timeout=timeout, debug=debug, extra=extra, env=env)
        return self.start(child)

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
    ) -> Child:
        """A proxy not started yet (to start several at once with ``start_all``); ``extra``: more options."""
        port = free_port()
        args = ["proxy", "--upstream", upstream, "--port", str(port), "--timeout", str(timeout), *extra]
        args += ["--log-level", "debug" if debug else "warning"]
        self.made += 1
        name = f"proxy-{self.made}"
        env = child_env(db_url, redis_url, debug=debug) | (env or {})
        return Child(name, [sys.executable, str(SHIM), *args], env, self.workdir, port)

    def start(self, child: Child) -> Child:
        self.start_all([child])
        return child

    def start_all(self, children: list[Child]) -> None:
        for child in children:
            self.children.append(child)
            child.launch()
        for child in children:
            child.wait_healthy()

    def close(self) -> None:
        for child in self.children:
            child.stop()


@dataclass
class Stack:
    """A database, a private Redis, the echo upstream and one proxy, shared by a module's tests."""

    db_url: str
    redis_url: str
    upstream: Child
    proxy: Child
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
    redis = RedisServer(workdir / "redis")
    redis.start()
    name = f"proxy_{workdir.name.lower().replace('-', '_')[:30]}_{free_port()}"
    db_url = pg_server.create_database(name)
    procs = Processes(workdir)
    try:
        upstream = procs.upstream()
        proxy = procs.proxy(upstream.url, db_url, redis.url, timeout=timeout, debug=debug)
        yield Stack(db_url, redis.url, upstream, proxy, procs)
    finally:
        procs.close()
        redis.close()
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
