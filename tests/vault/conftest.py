"""Backends for the vault tests: SQLite alone, PostgreSQL alone, and PostgreSQL + Redis.

`redis_url` is "" (not None) when a backend has no Redis, so an ACCORD_REDIS_URL in the environment
cannot sneak one in. PostgreSQL needs ACCORD_MASTER_KEY, which `master_key` sets for the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from accord.vault import Vault
from tests.vault.vault_helpers import TEST_KEY, VAULT_BACKENDS, VaultBackend


@pytest.fixture
def master_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ACCORD_MASTER_KEY", TEST_KEY)
    return TEST_KEY


@pytest.fixture(params=VAULT_BACKENDS)
def backend(request: pytest.FixtureRequest, master_key: str) -> VaultBackend:
    name: str = request.param
    if name == "sqlite":
        return VaultBackend(name, request.getfixturevalue("sqlite_url"), "")
    redis_url: str = request.getfixturevalue("redis_url") if name == "postgres_redis" else ""
    return VaultBackend(name, request.getfixturevalue("pg_url"), redis_url)


@pytest.fixture
async def vault(backend: VaultBackend) -> AsyncIterator[Vault]:
    async with await Vault.connect(backend.db_url, backend.redis_url, sweep=False) as opened:
        yield opened
