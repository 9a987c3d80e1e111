"""Running the real `accord` executable for the CLI tests (the `accord serve` processes are tests.harness's)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import httpx

from accord import Setting, SettingsGroup
from tests.harness import AccordServer, child_env, wait_until
from tests.harness.accord_server import ACCORD

__all__ = ["ACCORD", "AccordServer"]  # re-exported for the CLI tests
SECRET = "sk-live-0123456789abcdef"


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
    env = child_env({"ACCORD_START_TIMEOUT": "5", "COLUMNS": "200"})
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


ServerFactory = Callable[..., AccordServer]


def wait_for(check: Callable[[], bool], deadline_s: float, what: str, explain: Callable[[], str] = str) -> None:
    wait_until(check, timeout=deadline_s, interval=0.1, what=what, explain=explain)


def server_value(server: AccordServer, path: str, *, token: str | None = None, reveal: bool = False) -> object:
    headers = {"Authorization": f"Bearer {token or server.token}"}
    params = {"reveal": "true"} if reveal else {}
    response = httpx.get(f"{server.addr}/api/config/{path}", headers=headers, params=params, timeout=10)
    response.raise_for_status()
    return response.json()["value"]


def await_server_value(server: AccordServer, path: str, value: object, *, reveal: bool = False) -> None:
    """Wait (generously) until a running server shows ``value``: writes made elsewhere reach it by its bus."""
    wait_for(lambda: server_value(server, path, reveal=reveal) == value, 30, f"{path} == {value!r} on {server.addr}")
