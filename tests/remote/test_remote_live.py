"""Remote LiveConfig against two real `accord serve` replicas on one PostgreSQL + Redis (docs/remote.md)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import uvloop

import accord
from accord import Setting, SettingsGroup
from accord.core.errors import (
    ConflictError,
    PermissionDeniedError,
    ReadOnlyError,
    ServerUnreachableError,
    ValidationFailedError,
)
from tests.harness.accord_server import AccordServer, AccordServers

SECRET = "sk-remote-0123456789-PLAINTEXT"


class App(SettingsGroup, category="app"):
    model: str = Setting("small")
    limit: int = Setting(10, ge=1, le=100)
    api_key: str = Setting("", secret=True)


class Other(SettingsGroup, category="other"):
    flag: bool = Setting(False)


GROUPS: list[type[SettingsGroup]] = [App, Other]


def _pair(accord_servers: AccordServers, pg_url: str, redis_url: str) -> tuple[AccordServer, AccordServer]:
    first = accord_servers.start(pg_url, redis_url, expect_token=True)
    second = accord_servers.start(pg_url, redis_url)
    return first, second


def _token(server: AccordServer, name: str, rules: list[str], *, reveal: bool = False) -> str:
    with server.admin() as client:
        answer = client.post("/api/tokens", json={"name": name, "rules": rules, "reveal_secrets": reveal})
        answer.raise_for_status()
        secret: str = answer.json()["secret"]
        return secret


async def _eventually(check: Callable[[], bool], what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


def _bytes(path: str) -> bytes:
    return Path(path).read_bytes()


async def _remote(addr: str, token: str, **options: Any) -> accord.LiveConfig:
    return await accord.connect(addr=addr, token=token, groups=GROUPS, **options)


async def test_a_remote_client_sees_a_change_made_through_the_other_server(
    accord_servers: AccordServers, pg_url: str, redis_url: str
) -> None:
    first, second = _pair(accord_servers, pg_url, redis_url)
    assert first.token is not None
    async with await _remote(first.addr, first.token) as writer, await _remote(second.addr, first.token) as reader:
        seen: list[object] = []
        reader.on_change("app.model", lambda change: seen.append(change.new))
        meta = await writer.set("app.model", "large")
        await _eventually(lambda: reader.app.model == "large", "the change on the other server's client")
        assert seen == ["large"]
        assert reader.meta("app.model").version == meta.version
        assert reader.status().bus == "remote" and not reader.status().bus_degraded
        await writer.set("app.api_key", SECRET)
        await _eventually(lambda: reader.app.api_key == SECRET, "the secret, opened without the master key")
        with pytest.raises(ConflictError):
            await reader.set("app.model", "x", expect_version=meta.version - 1)
        with pytest.raises(ValidationFailedError):
            await reader.set("app.limit", 1000)


async def test_a_killed_server_moves_its_client_to_the_other_without_missing_a_revision(
    accord_servers: AccordServers, pg_url: str, redis_url: str
) -> None:
    first, second = _pair(accord_servers, pg_url, redis_url)
    assert first.token is not None
    async with (
        await _remote(f"{first.addr},{second.addr}", first.token) as client,
        await _remote(second.addr, first.token) as writer,
    ):
        revisions: list[int] = []
        client.on_change("app.limit", lambda change: revisions.append(change.revision))
        await writer.set("app.limit", 11)
        await _eventually(lambda: client.app.limit == 11, "the first change")
        first.kill()  # SIGKILL: no goodbye on the stream
        written = []
        for value in range(12, 20):
            written.append((await writer.set("app.limit", value)).mod_revision)
        await _eventually(lambda: client.app.limit == 19, "the changes made while its server was dead")
        assert revisions[1:] == written  # every revision, in order, none skipped
        assert client.replica.last_revision >= written[-1]
        await client.set("other.flag", True)  # writes follow the stream to the live server
        await _eventually(lambda: writer.other.flag is True, "a write by the moved client")


async def test_a_read_only_token_never_receives_a_secret_or_a_key_outside_its_rules(
    accord_servers: AccordServers, pg_url: str, redis_url: str
) -> None:
    first, second = _pair(accord_servers, pg_url, redis_url)
    assert first.token is not None
    reader_token = _token(first, "app-reader", ["config/app/=read"])
    async with await _remote(first.addr, first.token) as admin:
        await admin.set("app.api_key", SECRET)
        await admin.set("other.flag", True)
        async with await _remote(second.addr, reader_token) as reader:
            await admin.set("app.model", "large")
            await admin.set("app.api_key", SECRET + "-2")
            await admin.set("other.flag", False)
            await admin.set("other.flag", True)
            await _eventually(lambda: reader.app.model == "large", "a change the token may read")
            await _eventually(lambda: reader.last_revision >= admin.last_revision, "the reader to catch up")
            keys = {entry.key for entry in reader.entries()}
            assert "config/other/flag" not in keys
            assert "config/app/api_key" not in keys  # a secret without reveal rights is never sent
            assert reader.app.api_key == ""
            assert reader.other.flag is False  # never received: the default
            with pytest.raises(PermissionDeniedError):
                await reader.set("app.model", "mine")
            with pytest.raises(PermissionDeniedError):
                await reader.set("other.flag", False)
    stored = [e.value for e in reader.entries()]
    assert all(SECRET.encode() not in value for value in stored)


async def test_writes_are_refused_per_acl_and_fail_fast_with_no_server(
    accord_servers: AccordServers, pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    first, _second = _pair(accord_servers, pg_url, redis_url)
    assert first.token is not None
    writer_token = _token(first, "app-writer", ["config/app/=write", "config/other/=read"], reveal=True)
    snapshot = str(tmp_path / "last-known-good.json")
    async with await _remote(first.addr, first.token) as admin, await _remote(first.addr, writer_token) as client:
        await client.set("app.model", "mid")
        await client.set("app.api_key", SECRET)
        async with await _remote(first.addr, writer_token, snapshot_file=snapshot):
            pass  # a start writes the snapshot file
        assert SECRET.encode() not in _bytes(snapshot)  # sealed under the token's transport key
        with pytest.raises(PermissionDeniedError):
            await client.set("other.flag", True)
        with pytest.raises(PermissionDeniedError):
            await client.set_many({"app.limit": 5, "other.flag": True})  # all or nothing
        assert admin.app.limit == 10
        first.kill()
        with pytest.raises(ServerUnreachableError):
            await client.set("app.model", "late")
        assert client.app.model == "mid"  # reads keep serving memory
        await _eventually(lambda: client.status().bus_degraded, "status to say the stream is down")
    async with await _remote(first.addr, writer_token, snapshot_file=snapshot, start_timeout=1) as cold:
        assert (cold.app.model, cold.app.api_key) == ("mid", SECRET)  # a start with no server: the snapshot file
        assert cold.status().read_only
        with pytest.raises(ReadOnlyError):
            await cold.set("app.model", "late")


def test_a_remote_client_on_uvloop_sees_changes_as_on_asyncio(
    accord_servers: AccordServers, pg_url: str, redis_url: str
) -> None:
    """uvicorn runs FastAPI apps on uvloop when it is installed: the stream reader must work on its transports."""
    server = accord_servers.start(pg_url, redis_url, expect_token=True)
    assert server.token is not None
    token = server.token

    async def run() -> list[object]:
        async with await _remote(server.addr, token) as reader, await _remote(server.addr, token) as writer:
            seen: list[object] = []
            reader.on_change("app.limit", lambda change: seen.append(change.new))
            for value in (21, 22, 23):
                await writer.set("app.limit", value)
            await _eventually(lambda: reader.app.limit == 23, "the changes on a uvloop client")
            assert reader.status().bus == "remote" and not reader.status().bus_degraded
            return seen

    assert uvloop.run(run()) == [21, 22, 23]
