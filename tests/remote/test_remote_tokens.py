"""A remote client's token on a real `accord serve`: a bad one fails at start, a revoked one loses stream and writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

import accord
from accord import Setting, SettingsGroup
from accord.core.errors import AuthenticationError, InvalidInputError
from tests.harness.accord_server import AccordServers


class Feature(SettingsGroup, category="feature"):
    enabled: bool = Setting(False)


async def _eventually(check: Callable[[], bool], what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_revoked_token_loses_its_stream_and_its_writes(accord_servers: AccordServers, sqlite_url: str) -> None:
    server = accord_servers.start(sqlite_url, "", expect_token=True)
    assert server.token is not None
    with server.admin() as admin:
        created = admin.post("/api/tokens", json={"name": "pod", "rules": ["config/feature/=write"]})
        created.raise_for_status()
        secret = created.json()["secret"]
    with pytest.raises(InvalidInputError, match="vault/"):  # not in the server's replica: refused at start
        await accord.connect(addr=server.addr, token=secret, extra_prefixes=("vault/",), start_timeout=5)
    with pytest.raises(AuthenticationError):
        await accord.connect(addr=server.addr, token="acc_not_a_real_token_0000000000", start_timeout=5)
    async with await accord.connect(addr=server.addr, token=secret, groups=[Feature]) as cfg:
        await cfg.set("feature.enabled", True)
        assert not cfg.status().bus_degraded
        with server.admin() as admin:
            admin.delete("/api/tokens/pod").raise_for_status()
        await _eventually(lambda: cfg.status().bus_degraded, "the stream of a revoked token to end")
        with pytest.raises(AuthenticationError):
            await cfg.set("feature.enabled", False)
        assert cfg.feature.enabled is True  # reads keep serving what it had
