"""Shared constants and helpers of the vault tests (imported by name; tests/vault has no __init__.py)."""

from __future__ import annotations

import base64

TEST_KEY = base64.b64encode(bytes(range(100, 132))).decode()
