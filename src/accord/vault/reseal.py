"""The vault's sealed data for a key rotation: every stored original, resealed under the active key.

Fingerprints are not resealed: they are keyed by the fingerprint key the first vault pinned
(accord.vault.keypin), so an original keeps its token across rotations. That key therefore stays
in every keyring for good; a rotation reports it as never to be deleted. Redis holds copies of the
old blobs, so after a rotation the vault's Redis hashes are dropped (the database holds every mapping).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from accord.bus.redis_conn import RedisClient
from accord.core.crypto import Cipher
from accord.core.redis_keys import RedisKeys
from accord.store.reseal import ResealCount
from accord.vault._redis.mappings import RedisMappings
from accord.vault._sql.reseal import reseal_originals
from accord.vault.keypin import pinned_key_id

__all__ = ["VaultOriginals"]


class VaultOriginals:
    """The resealer of vault mappings, for ``accord.keys.rotate``."""

    name = "vault"

    async def reseal(self, conn: AsyncConnection, cipher: Cipher, *, dry_run: bool) -> ResealCount:
        count = ResealCount(self.name, {"mappings": 0})
        await reseal_originals(conn, cipher, count, dry_run=dry_run)
        return count

    async def kept_keys(self, conn: AsyncConnection) -> list[str]:
        """Key ids that must never leave the keyring: the pinned fingerprint key, once a vault opened here."""
        pinned = await pinned_key_id(conn)
        return [] if pinned is None else [pinned]

    async def invalidate(self, client: RedisClient, keys: RedisKeys) -> None:
        await RedisMappings(client, keys).invalidate()
