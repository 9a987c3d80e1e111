"""Remote clients in the fleet view: each reports the revision its own replica applied, a server writes its row,
`--wait-applied` waits for it, and one that stops reporting goes stale like a direct instance."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import accord
from accord import Setting, SettingsGroup
from accord.registry.fleet import STALE_AFTER_S
from tests.harness.accord_server import ACCORD, AccordServer, AccordServers
from tests.harness.http_process import child_env

CLIENT = Path(__file__).with_name("fleet_client.py")


class Feature(SettingsGroup, category="feature"):
    enabled: bool = Setting(False)
    level: int = Setting(0)


def _token(server: AccordServer, name: str, rules: list[str]) -> str:
    with server.admin() as admin:
        created = admin.post("/api/tokens", json={"name": name, "rules": rules})
        created.raise_for_status()
        secret: str = created.json()["secret"]
        return secret


def _rows(server: AccordServer) -> dict[str, dict[str, Any]]:
    with server.admin() as admin:
        listed = admin.get("/api/instances")
        listed.raise_for_status()
        return {row["id"]: row for row in listed.json()}


def _set(server: AccordServer, path: str, value: object, wait: str) -> httpx.Response:
    with server.admin() as admin:
        return admin.put(f"/api/config/{path}", params={"wait_applied": wait}, json={"value": value})


async def _aset(server: AccordServer, path: str, value: object, wait: str) -> httpx.Response:
    """As ``_set``, without blocking the loop the in-process client applies changes on."""
    headers = {"Authorization": f"Bearer {server.token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as admin:
        return await admin.put(f"/api/config/{path}", params={"wait_applied": wait}, json={"value": value})


async def _arows(server: AccordServer) -> dict[str, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {server.token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as admin:
        listed = await admin.get("/api/instances")
        listed.raise_for_status()
        return {row["id"]: row for row in listed.json()}


def _eventually(check: Callable[[], bool], what: str, within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        time.sleep(0.1)


@contextmanager
def _client_process(server: AccordServer, token: str, workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A remote client in its own process; yields it and its instance id once it has announced itself."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "client.log"
    env = child_env({"ACCORD_ADDR": server.addr, "ACCORD_TOKEN": token, "ACCORD_SERVICE": "fleet-probe"})
    with out.open("wb") as log:
        proc = subprocess.Popen([sys.executable, str(CLIENT)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _eventually(lambda: "ready " in out.read_text() or proc.poll() is not None, "the client to start", 60)
        assert proc.poll() is None, out.read_text()
        yield proc, out.read_text().split("ready ", 1)[1].split()[0]
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait(timeout=10)


async def test_a_remote_client_is_listed_at_the_revision_it_applied(
    accord_servers: AccordServers, sqlite_url: str
) -> None:
    server = accord_servers.start(sqlite_url, "", expect_token=True)
    secret = _token(server, "pod", ["config/feature/=write", "fleet/=write"])
    async with await accord.connect(addr=server.addr, token=secret, groups=[Feature]) as cfg:
        assert cfg.announcer is not None
        instance = cfg.announcer.id
        assert (await _arows(server))[instance]["applied_revision"] == cfg.replica.last_revision
        written = await _aset(server, "feature.level", 7, "10s")  # through the server; the client's stream applies it
        assert written.status_code == 200, written.text
        assert cfg.feature.level == 7, "wait_applied returned before the remote client had applied the change"
        revision = cfg.replica.last_revision
        assert (await _arows(server))[instance]["applied_revision"] == revision
        listed = await asyncio.create_subprocess_exec(
            ACCORD,
            "instances",
            "--json",
            env=child_env({"ACCORD_ADDR": server.addr, "ACCORD_TOKEN": server.token or ""}),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await listed.communicate()
        assert listed.returncode == 0, err.decode()
        mine = [r for r in json.loads(out) if r["id"] == instance]
        assert mine and mine[0]["applied_revision"] == revision and mine[0]["lag"] == 0, out.decode()
        assert mine[0]["service"] != "accord", "the row is the client's, not the server's"
    assert instance not in await _arows(server), "aclose() removes the client's row through the server"

    # A token without fleet/=write: the client works, is not listed, and says why once.
    quiet = _token(server, "quiet", ["config/feature/=write"])
    async with await accord.connect(addr=server.addr, token=quiet, groups=[Feature]) as cfg:
        assert cfg.announcer is not None and cfg.announcer.id not in await _arows(server)
        await cfg.set("feature.enabled", True)
        assert (await _aset(server, "feature.level", 8, "5s")).status_code == 200, "an unlisted client holds none up"


def test_a_stalled_client_holds_up_wait_applied_until_it_goes_stale(
    accord_servers: AccordServers, sqlite_url: str, tmp_path: Path
) -> None:
    server = accord_servers.start(sqlite_url, "", expect_token=True)
    secret = _token(server, "pod", ["config/feature/=write", "fleet/=write"])  # write: it registers its schema
    with _client_process(server, secret, tmp_path / "client") as (proc, instance):
        assert _set(server, "feature.level", 1, "10s").status_code == 200
        applied = _rows(server)[instance]["applied_revision"]

        proc.send_signal(signal.SIGSTOP)  # alive to the server's eyes (its row is fresh) but applying nothing
        refused = _set(server, "feature.level", 2, "2s")
        assert refused.status_code == 504, refused.text
        assert refused.json()["error"] == "NotAppliedError"
        assert instance in refused.json()["detail"] and "fleet-probe" in refused.json()["detail"]
        assert _rows(server)[instance]["applied_revision"] == applied, "the server wrote a revision for the client"

        _eventually(lambda: _rows(server)[instance]["stale"], "the silent client to go stale", STALE_AFTER_S + 15)
        assert _set(server, "feature.level", 3, "5s").status_code == 200  # a stale row no longer holds writes up

        proc.send_signal(signal.SIGCONT)  # back: it applies the missed changes and reports again
        _eventually(lambda: not _rows(server)[instance]["stale"], "the client to report again", 20)
        _eventually(lambda: _rows(server)[instance]["lag"] == 0, "the client to catch up", 20)
        proc.kill()  # dead without leaving: its row stays until it is stale, then expires as a direct one's
        proc.wait(timeout=10)
        assert instance in _rows(server)
        _eventually(lambda: _rows(server)[instance]["stale"], "the dead client to go stale", STALE_AFTER_S + 15)
