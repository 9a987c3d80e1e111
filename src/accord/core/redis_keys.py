"""Every Redis key and channel accord uses, in one place, so prefixes never collide.

Everything is namespaced by the deployment id kept in the database (``accord:<id>:...``): Redis
pub/sub channels are shared by every DB number of a server, and keys may be too (a shared DB
number), so two deployments on one Redis never read each other's channel, cache or counters.

Keys one Lua script or MULTI touches together share a hash tag, ``accord:{<id>:<group>}:...``, so they
hash to one Redis Cluster slot (docs/redis-cluster.md has the table): the value cache, the vault (its
scopes and sequences, which GET_OR_CREATE reads together) and the events are one group each.
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
CACHE_GROUP = "cache"
VAULT_GROUP = "vault"
EVENTS_GROUP = "events"


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """The keys of one deployment."""

    deployment_id: str

    @property
    def base(self) -> str:
        return f"{PREFIX}{self.deployment_id}:"

    def owns(self, key: str) -> bool:
        """Whether ``key`` (or a channel) is in this deployment's namespace, grouped or not."""
        return key.startswith((self.base, f"{PREFIX}{{{self.deployment_id}:"))

    def group(self, name: str) -> str:
        """The prefix of a slot group: every key under it hashes to one cluster slot (the ``{...}`` tag)."""
        return f"{PREFIX}{{{self.deployment_id}:{name}}}:"

    @property
    def changes_channel(self) -> str:
        return self.base + "changes"

    @property
    def cache_values(self) -> str:
        return self.group(CACHE_GROUP) + "kv"

    @property
    def cache_revision(self) -> str:
        return self.group(CACHE_GROUP) + "revision"

    @property
    def cache_pending(self) -> str:
        return self.group(CACHE_GROUP) + "pending"

    @property
    def cache_rebuild_lock(self) -> str:
        return self.group(CACHE_GROUP) + "rebuild-lock"

    @property
    def sequence_prefix(self) -> str:
        """One hash per sequence name, fields ``n`` (last number issued) and ``max`` (top of the DB-reserved range)."""
        return self.group(VAULT_GROUP) + "seq:"

    @property
    def vault_prefix(self) -> str:
        """Every vault key (mappings and sequences): one slot, since GET_OR_CREATE reads both."""
        return self.group(VAULT_GROUP)

    def vault_scope(self, scope: str) -> tuple[str, str, str]:
        """The three hashes of one scope: fingerprints, tokens, last uses."""
        base = f"{self.vault_prefix}scope:{scope}:"
        return base + VAULT_FINGERPRINTS, base + VAULT_TOKENS, base + VAULT_USED

    @property
    def events_stream(self) -> str:
        return self.group(EVENTS_GROUP) + "stream"

    @property
    def events_dlq(self) -> str:
        return self.group(EVENTS_GROUP) + "dlq"
