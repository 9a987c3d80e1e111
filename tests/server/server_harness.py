"""`accord serve` as a real child process, the settings the server tests declare, and small HTTP helpers.

The server validates by the schema an application registered in the store, so every test first runs
`declare()` (one `accord.connect(groups=...)`), then starts servers on the same database and Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

import accord
from accord import Setting, SettingsGroup
from tests.servers import ServerError, free_port

TOKEN_RE = re.compile(r"acc_[A-Za-z0-9_-]+")
# `accord serve` with the root logger at DEBUG first: accord, SQLAlchemy (statements and parameters), asyncpg
# and redis-py then log everything they have to say, which is what a leak test wants to search.
DEBUG_EVERYTHING = (
    "import logging, sys; logging.basicConfig(level=logging.DEBUG, format='%(levelname)s %(name)s: %(message)s'); "
    "logging.getLogger('sqlalchemy').setLevel(logging.DEBUG); "
    "sys.argv[0] = 'accord'; from accord.cli.app import main; main()"
)
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
T = TypeVar("T")
Serve = Callable[..., "AccordServer"]


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


@dataclass
class AccordServer:
    """One `accord serve` process; stdout and stderr go to files so a test can search its logs."""

    db_url: str
    redis_url: str
    workdir: Path
    log_level: str = "debug"
    debug_everything: bool = False
    port: int = field(default_factory=free_port)
    token: str | None = None
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stdout_path(self) -> Path:
        return self.workdir / "stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / "stderr.log"

    def start(self) -> AccordServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "ACCORD_DB_URL": self.db_url, "ACCORD_REDIS_URL": self.redis_url}
        launcher = [sys.executable, "-c", DEBUG_EVERYTHING] if self.debug_everything else [_accord_executable()]
        command = [*launcher, "serve", "--port", str(self.port), "--log-level", self.log_level]
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self._proc = subprocess.Popen(
                command, cwd=self.workdir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
        self._wait_healthy()
        found = TOKEN_RE.search(self.stdout_path.read_text(errors="replace"))
        self.token = found.group(0) if found else None
        return self

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=STOP_TIMEOUT)

    def logs(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def client(self, token: str | None = None, *, headers: dict[str, str] | None = None) -> httpx.Client:
        sent = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=sent | (headers or {}), timeout=30.0)

    def admin(self) -> httpx.Client:
        assert self.token, "this server did not print a management token"
        return self.client(self.token)

    def _wait_healthy(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServerError(f"accord serve exited with {self._proc.returncode}:\n{self.logs()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"accord serve on port {self.port} not healthy in {START_TIMEOUT}s:\n{self.logs()[-3000:]}")


def _accord_executable() -> str:
    return str(Path(sys.executable).with_name("accord"))


def wait_until(probe: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.05, what: str = "") -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after a generous deadline."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}; last result: {last!r}")


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
