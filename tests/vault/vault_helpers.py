"""Shared constants and helpers of the vault tests."""

from __future__ import annotations

import base64
from dataclasses import dataclass

TEST_KEY = base64.b64encode(bytes(range(100, 132))).decode()

VAULT_BACKENDS = ("sqlite", "postgres", "postgres_redis")


@dataclass(frozen=True)
class VaultBackend:
    name: str
    db_url: str
    redis_url: str
