"""`accord serve --workers 2`: each worker gets the database from its parent's app factory, not the environment."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from tests.cli.cli_helpers import ACCORD, START_DEADLINE_S, TOKEN_RE, cli_env, wait_for
from tests.servers import free_port


def _healthy(proc: subprocess.Popen[bytes], addr: str) -> bool:
    assert proc.poll() is None, f"accord serve exited with {proc.returncode}"
    try:
        return httpx.get(f"{addr}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_two_workers_serve_the_database_named_on_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "named.db"
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    args = [ACCORD, "serve", "--workers", "2", "--port", str(port), "--db-url", f"sqlite:///{db}"]
    with (tmp_path / "serve.err").open("wb") as err, (tmp_path / "serve.out").open("wb") as out:
        proc = subprocess.Popen([*args, "--log-level", "warning"], stdout=out, stderr=err, env=cli_env(), cwd=cwd)
    try:
        wait_for(lambda: _healthy(proc, addr), START_DEADLINE_S, f"accord serve --workers 2 on {addr}")
        token = TOKEN_RE.search((tmp_path / "serve.out").read_text())
        assert token, "no management token printed"
        urls = set()
        for _ in range(30):  # a new connection each time, so the kernel hands them to both workers
            headers = {"Connection": "close", "Authorization": f"Bearer {token.group(0)}"}  # /readyz names URLs only so
            answer = httpx.get(f"{addr}/readyz", timeout=10, headers=headers)
            urls.add(answer.json()["dependencies"]["database"]["url"])
        assert urls == {f"sqlite+aiosqlite:///{db}"}
        assert not (cwd / "accord.db").exists()  # no worker fell back to the embedded default
    finally:
        proc.terminate()
        proc.wait(30)
