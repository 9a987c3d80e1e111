"""Every Redis key and channel accord uses, in one place, so prefixes never collide."""

from __future__ import annotations

PREFIX = "accord:"
CHANGES_CHANNEL = PREFIX + "changes"
CACHE_VALUES = PREFIX + "cache:kv"
CACHE_REVISION = PREFIX + "cache:revision"
CACHE_PENDING = PREFIX + "cache:pending"
CACHE_REBUILD_LOCK = PREFIX + "cache:rebuild-lock"
# Sequences: one hash per name, fields ``n`` (last number issued) and ``max`` (top of the DB-reserved range).
SEQUENCE_PREFIX = PREFIX + "seq:"
# Vault mappings, per scope: ``accord:vault:{<scope>}:<part>``; the braces keep one scope in one cluster slot.
VAULT_PREFIX = PREFIX + "vault:"
VAULT_FINGERPRINTS = "fp"  # hash: "<TYPE>:<fingerprint>" -> token ("?"-prefixed while maybe not yet in the DB)
VAULT_TOKENS = "tok"  # hash: token -> encrypted original (the DB blob)
VAULT_USED = "used"  # hash: token -> last use, unix seconds (Redis clock)
