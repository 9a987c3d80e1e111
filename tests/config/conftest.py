"""The config contract suite runs on the harness's three backends: SQLite, PostgreSQL, PostgreSQL + Redis.

`contract_backend` gives the URLs to pass to `accord.connect(backend.db_url, backend.redis_url, ...)`.
"""

import pytest

from tests.harness import BACKENDS, Backend

CONTRACT_BACKENDS = BACKENDS
ContractBackend = Backend


@pytest.fixture
def contract_backend(store_backend: Backend) -> Backend:
    """One store per test, on each of the three backends in turn."""
    return store_backend
