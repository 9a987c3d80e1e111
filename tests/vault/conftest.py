"""Backends for the vault tests: the harness's SQLite, PostgreSQL and PostgreSQL + Redis, with the vault's key.

PostgreSQL needs ACCORD_MASTER_KEY, which `master_key` sets for the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from accord.vault import Vault
from tests.harness import Backend
from tests.harness.redis_cluster import cluster_url, redis_cluster
from tests.vault.vault_helpers import TEST_KEY

__all__ = ["cluster_url", "redis_cluster"]  # the Redis Cluster fixtures, for the vault tests on a cluster


@pytest.fixture
def master_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ACCORD_MASTER_KEY", TEST_KEY)
    return TEST_KEY


@pytest.fixture
def backend(store_backend: Backend, master_key: str) -> Backend:
    """`store_backend` (one test per backend) under the vault's key."""
    return store_backend


@pytest.fixture
async def vault(backend: Backend) -> AsyncIterator[Vault]:
    async with await Vault.connect(backend.db_url, backend.redis_url, sweep=False) as opened:
        yield opened
