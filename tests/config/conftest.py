"""Backends for the config contract suite: the same tests run on SQLite, PostgreSQL and PostgreSQL + Redis.

`contract_backend` gives the URLs to pass to `accord.connect(backend.db_url, backend.redis_url, ...)`.
Servers are requested lazily, so a SQLite run never starts PostgreSQL or Redis. `redis_url` is "" (not
None) when the backend has no Redis, so an ACCORD_REDIS_URL in the environment cannot sneak one in.
"""

from dataclasses import dataclass

import pytest

CONTRACT_BACKENDS = ("sqlite", "postgres", "postgres_redis")


@dataclass(frozen=True)
class ContractBackend:
    name: str
    db_url: str
    redis_url: str

    @property
    def has_redis(self) -> bool:
        return bool(self.redis_url)


@pytest.fixture(params=CONTRACT_BACKENDS)
def contract_backend(request: pytest.FixtureRequest) -> ContractBackend:
    """One store per test, on each of the three backends in turn."""
    name: str = request.param
    if name == "sqlite":
        return ContractBackend(name, request.getfixturevalue("sqlite_url"), "")
    db_url: str = request.getfixturevalue("pg_url")
    redis_url: str = request.getfixturevalue("redis_url") if name == "postgres_redis" else ""
    return ContractBackend(name, db_url, redis_url)
