"""The three store backends every contract runs on: SQLite alone, PostgreSQL alone, PostgreSQL + Redis.

`redis_url` is "" (not None) when a backend has no Redis, so an ACCORD_REDIS_URL in the environment
cannot sneak one in.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

BACKENDS = ("sqlite", "postgres", "postgres_redis")


@dataclass(frozen=True)
class Backend:
    """The URLs to hand to `accord.connect(backend.db_url, backend.redis_url, ...)` or `Vault.connect`."""

    name: str
    db_url: str
    redis_url: str

    @property
    def has_redis(self) -> bool:
        return bool(self.redis_url)


def backend_for(request: pytest.FixtureRequest, name: str) -> Backend:
    """Servers are requested lazily, so a SQLite run never starts PostgreSQL or Redis."""
    if name == "sqlite":
        return Backend(name, request.getfixturevalue("sqlite_url"), "")
    db_url: str = request.getfixturevalue("pg_url")
    redis_url: str = request.getfixturevalue("redis_url") if name == "postgres_redis" else ""
    return Backend(name, db_url, redis_url)
