"""Every Redis key and channel accord uses, in one place, so prefixes never collide.

Everything is namespaced by the deployment id kept in the database (``accord:<id>:...``): Redis
pub/sub channels are shared by every DB number of a server, and keys may be too (a shared DB
number), so two deployments on one Redis never read each other's channel, cache or counters.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "accord:"
# Where a process that cannot reach its database finds its deployment id: "accord:deployment-of:<sha256 of the
# database identity>" -> id. Only read for a read-only start from the Redis cache (which trusts Redis anyway).
DEPLOYMENT_POINTER_PREFIX = PREFIX + "deployment-of:"
VAULT_FINGERPRINTS = "fp"  # hash: "<TYPE>:<fingerprint>" -> token ("?"-prefixed while maybe not yet in the DB)
VAULT_TOKENS = "tok"  # hash: token -> encrypted original (the DB blob)
VAULT_USED = "used"  # hash: token -> last use, unix seconds (Redis clock)


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """The keys of one deployment."""

    deployment_id: str

    @property
    def base(self) -> str:
        return f"{PREFIX}{self.deployment_id}:"

    @property
    def changes_channel(self) -> str:
        return self.base + "changes"

    @property
    def cache_values(self) -> str:
        return self.base + "cache:kv"

    @property
    def cache_revision(self) -> str:
        return self.base + "cache:revision"

    @property
    def cache_pending(self) -> str:
        return self.base + "cache:pending"

    @property
    def cache_rebuild_lock(self) -> str:
        return self.base + "cache:rebuild-lock"

    @property
    def sequence_prefix(self) -> str:
        """One hash per sequence name, fields ``n`` (last number issued) and ``max`` (top of the DB-reserved range)."""
        return self.base + "seq:"

    @property
    def vault_prefix(self) -> str:
        """Vault mappings, per scope: ``<vault_prefix>{<scope>}:<part>`` (braces: one scope, one cluster slot)."""
        return self.base + "vault:"
