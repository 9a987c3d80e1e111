"""Running the real `accord` executable, and real `accord serve` processes, for the CLI tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from accord import Setting, SettingsGroup
from tests.servers import free_port

ACCORD = str(Path(sys.executable).with_name("accord"))
TOKEN_RE = re.compile(r"acc_[A-Za-z0-9_\-]{20,}")
SECRET = "sk-live-0123456789abcdef"
START_DEADLINE_S = 90.0


class Llm(SettingsGroup, category="llm"):
    model: str = Setting("gpt-4o", description="chat model")
    timeout_s: int = Setting(30, ge=1, le=600)
    api_key: str = Setting("", secret=True)
    stop: list[str] = Setting([])


def bulk_group(count: int) -> type[SettingsGroup]:
    """A category with ``count`` int settings, for jobs big enough to get a progress bar."""
    names = [f"k{i:03d}" for i in range(count)]
    namespace: dict[str, object] = {"__annotations__": dict.fromkeys(names, int)}
    namespace |= {name: Setting(i, ge=0) for i, name in enumerate(names)}
    return type("Bulk", (SettingsGroup,), namespace, category="bulk")


def cli_env(
    *, db: str | None = None, addr: str | None = None, token: str | None = None, extra: dict[str, str] | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_") or k == "ACCORD_MASTER_KEY"}
    env |= {"ACCORD_START_TIMEOUT": "5", "COLUMNS": "200"}
    if db is not None:
        env["ACCORD_DB_URL"] = db
    if addr is not None:
        env["ACCORD_ADDR"] = addr
    if token is not None:
        env["ACCORD_TOKEN"] = token
    return env | (extra or {})


def run_cli(
    *args: str,
    db: str | None = None,
    addr: str | None = None,
    token: str | None = None,
    extra: dict[str, str] | None = None,
    code: int | None = 0,
) -> subprocess.CompletedProcess[str]:
    """Run `accord ARGS`; with ``code`` set, assert the exit code; never accept a traceback."""
    return finish(launch(args, cli_env(db=db, addr=addr, token=token, extra=extra)), code)


def launch(args: tuple[str, ...], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [ACCORD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env
    )


def finish(proc: subprocess.Popen[str], code: int | None) -> subprocess.CompletedProcess[str]:
    try:
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert "Traceback" not in stderr, stderr
    if code is not None:
        assert done.returncode == code, (proc.args, done.returncode, stdout, stderr)
    return done


def both(
    db_url: str, addr: str, token: str | None, *args: str, code: int = 0, extra: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """The same command on the database and over HTTP, run side by side: (direct, http)."""
    direct = launch(args, cli_env(db=db_url, extra=extra))
    http = launch(args, cli_env(addr=addr, token=token))
    return finish(direct, code), finish(http, code)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@dataclass
class AccordServer:
    """One `accord serve` process on a free port; ``token`` is the management token it printed (if it made one)."""

    workdir: Path
    db_url: str
    redis_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    token: str | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, expect_token: bool = True) -> AccordServer:
        self.port = free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = self.workdir / f"serve-{self.port}.out"
        self.stderr_path = self.workdir / f"serve-{self.port}.err"
        args = [ACCORD, "serve", "--port", str(self.port), "--db-url", self.db_url, "--log-level", "warning"]
        if self.redis_url:
            args += ["--redis-url", self.redis_url]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            env = cli_env(extra=self.extra_env)
            self.proc = subprocess.Popen(args, stdout=out, stderr=err, env=env, cwd=self.workdir)
        wait_for(self._healthy, START_DEADLINE_S, f"accord serve on {self.addr}", self._log)
        if expect_token:
            wait_for(self._read_token, START_DEADLINE_S, "the management token on stdout", self._log)
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(15)

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"accord serve exited with {self.proc.returncode}: {self._log()}")
        try:
            return httpx.get(f"{self.addr}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def _read_token(self) -> bool:
        match = TOKEN_RE.search(self.stdout_path.read_text(errors="replace"))
        self.token = match.group(0) if match else None
        return self.token is not None

    def _log(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-3000:]


ServerFactory = Callable[..., AccordServer]


def wait_for(check: Callable[[], bool], deadline_s: float, what: str, explain: Callable[[], str] = str) -> None:
    end = time.monotonic() + deadline_s
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"{what} not reached within {deadline_s:g}s\n{explain()}")
        time.sleep(0.1)


def server_value(server: AccordServer, path: str, *, token: str | None = None, reveal: bool = False) -> object:
    headers = {"Authorization": f"Bearer {token or server.token}"}
    params = {"reveal": "true"} if reveal else {}
    response = httpx.get(f"{server.addr}/api/config/{path}", headers=headers, params=params, timeout=10)
    response.raise_for_status()
    return response.json()["value"]


def await_server_value(server: AccordServer, path: str, value: object, *, reveal: bool = False) -> None:
    """Wait (generously) until a running server shows ``value``: writes made elsewhere reach it by its bus."""
    wait_for(lambda: server_value(server, path, reveal=reveal) == value, 30, f"{path} == {value!r} on {server.addr}")
