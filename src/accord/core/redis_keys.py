"""Every Redis key and channel accord uses, in one place, so prefixes never collide."""

from __future__ import annotations

PREFIX = "accord:"
CHANGES_CHANNEL = PREFIX + "changes"
CACHE_VALUES = PREFIX + "cache:kv"
CACHE_REVISION = PREFIX + "cache:revision"
CACHE_REBUILD_LOCK = PREFIX + "cache:rebuild-lock"
