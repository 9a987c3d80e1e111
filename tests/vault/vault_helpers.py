"""Shared constants and helpers of the vault tests."""

from __future__ import annotations

import base64

from tests.harness import BACKENDS, Backend

TEST_KEY = base64.b64encode(bytes(range(100, 132))).decode()

VAULT_BACKENDS = BACKENDS  # the harness's three backends, under the name the vault tests know
VaultBackend = Backend
