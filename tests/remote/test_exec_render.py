"""`accord exec` and `accord render` over the remote mode, against a real `accord serve` (docs/remote.md)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import accord
from accord import Setting, SettingsGroup
from tests.harness.accord_server import ACCORD, AccordServer, AccordServers
from tests.harness.http_process import child_env

SECRET = "sk-exec-0123456789-PLAINTEXT"


class Svc(SettingsGroup, category="svc"):
    model: str = Setting("small")
    workers: int = Setting(2, ge=1)
    api_key: str = Setting("", secret=True)


@pytest.fixture
def server(accord_servers: AccordServers, sqlite_url: str) -> AccordServer:
    return accord_servers.start(sqlite_url, "", expect_token=True)


def _accord(server: AccordServer, *args: str, out: Path) -> subprocess.Popen[bytes]:
    assert server.token is not None
    env = child_env({"ACCORD_ADDR": server.addr, "ACCORD_TOKEN": server.token})
    env.pop("ACCORD_MASTER_KEY", None)  # a remote client needs no master key
    with (
        (out.parent / f"{out.name}.stdout").open("wb") as stdout,
        (out.parent / f"{out.name}.stderr").open("wb") as log,
    ):
        return subprocess.Popen([ACCORD, *args], env=env, stdout=stdout, stderr=log)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _eventually(check: Callable[[], bool], what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


async def test_exec_restarts_its_child_with_the_new_value(
    server: AccordServer, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    assert server.token is not None
    seen = tmp_path / "seen"
    child = (
        "import os, pathlib, time; "
        f"pathlib.Path({str(seen)!r}).open('a').write(f\"{{os.getpid()}} {{os.environ['SVC_MODEL']}}\\n\"); "
        "time.sleep(600)"
    )
    async with await accord.connect(addr=server.addr, token=server.token, groups=[Svc]) as cfg:
        procs.append(_accord(server, "exec", "--prefix", "svc.", "--", sys.executable, "-c", child, out=seen))
        await _eventually(lambda: _text(seen).endswith(" small\n"), "the child with the first value")
        await cfg.set("svc.model", "large")
        await _eventually(lambda: _text(seen).endswith(" large\n"), "a restarted child with the new value")
    lines = _text(seen).splitlines()
    assert [line.split()[1] for line in lines] == ["small", "large"]
    assert lines[0].split()[0] != lines[1].split()[0]  # a new process, not the old one


async def test_exec_dry_run_masks_secrets_and_a_missing_prefix_is_named(
    server: AccordServer, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    assert server.token is not None
    async with await accord.connect(addr=server.addr, token=server.token, groups=[Svc]) as cfg:
        await cfg.set("svc.api_key", SECRET)
    dry = _accord(server, "exec", "--prefix", "svc.", "--dry-run", "--", "true", out=tmp_path / "dry")
    procs.append(dry)
    dry.wait(60)
    out = (tmp_path / "dry.stdout").read_bytes()
    assert dry.returncode == 0, (tmp_path / "dry.stderr").read_text()
    assert b"SVC_MODEL=small" in out and b"SVC_API_KEY=****" in out and SECRET.encode() not in out
    missing = _accord(server, "exec", "--prefix", "nope.", "--", "true", out=tmp_path / "missing")
    procs.append(missing)
    missing.wait(60)
    assert missing.returncode == 2
    assert "'nope.'" in (tmp_path / "missing.stderr").read_text()


async def test_render_rewrites_its_file_atomically(
    server: AccordServer, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    assert server.token is not None
    template = tmp_path / "app.conf.tpl"
    template.write_text("model={{ svc.model }}\nworkers={{svc.workers}}\n" + "# padding\n" * 2000)
    out = tmp_path / "conf" / "app.conf"
    async with await accord.connect(addr=server.addr, token=server.token, groups=[Svc]) as cfg:
        procs.append(_accord(server, "render", str(template), str(out), out=tmp_path / "render"))
        await _eventually(lambda: _text(out).startswith("model=small\n"), "the first rendering")
        first = os.open(out, os.O_RDONLY)  # held open: a rewrite in place would show through it
        expected = {
            template.read_text().replace("{{ svc.model }}", m).replace("{{svc.workers}}", w)
            for m, w in (("small", "2"), ("large", "2"), ("large", "8"))
        }
        reads: list[str] = []

        async def read_all_the_time() -> None:
            while True:
                reads.append(_text(out))
                await asyncio.sleep(0)

        reader = asyncio.ensure_future(read_all_the_time())
        try:
            await cfg.set("svc.model", "large")
            await cfg.set("svc.workers", 8)
            await _eventually(lambda: _text(out).startswith("model=large\nworkers=8\n"), "the rewritten file")
        finally:
            reader.cancel()
    assert set(reads) <= expected  # every read saw a whole file, old or new: never half-written
    try:  # replaced by rename, not rewritten in place: the file we held is the first one, now unlinked
        assert os.read(first, 100).startswith(b"model=small\nworkers=2\n")
        assert os.fstat(first).st_nlink == 0
    finally:
        os.close(first)
    assert [p.name for p in out.parent.iterdir()] == ["app.conf"], (
        "a temporary file was left behind"
    )  # no temporary file left behind


async def test_render_names_a_missing_key_and_writes_nothing(
    server: AccordServer, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    assert server.token is not None
    async with await accord.connect(addr=server.addr, token=server.token, groups=[Svc]):
        pass
    template = tmp_path / "t.tpl"
    template.write_text("a={{ svc.model }} b={{ svc.nope }}\n")
    out = tmp_path / "out.conf"
    proc = _accord(server, "render", "--once", str(template), str(out), out=tmp_path / "r")
    procs.append(proc)
    proc.wait(60)
    assert proc.returncode == 2
    assert "svc.nope" in (tmp_path / "r.stderr").read_text()
    assert not out.exists()


def test_connect_sync_works_remote(server: AccordServer) -> None:
    assert server.token is not None
    with accord.connect_sync(addr=server.addr, token=server.token, groups=[Svc]) as cfg:
        cfg.set("svc.workers", 4)
        assert cfg.svc.workers == 4
        assert cfg.status().bus == "remote"
