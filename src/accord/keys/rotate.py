"""Key rotation: every capability that seals data reseals it under the active key, all in one transaction.

Config secrets (``accord.config.reseal``) and the vault's originals (``accord.vault.reseal``) are
resealed in one transaction per database, or none of them is. A dry run counts, per capability,
exactly what the real run would reseal (the same code, without the writes), and names the keys that
must never be deleted (the vault's pinned fingerprint key). After a real run the caches in Redis
that hold old blobs are invalidated, each through its own class.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from accord.bus.redis_conn import REDIS_DOWN_ERRORS, RedisClient, redis_client
from accord.config.reseal import ConfigSecrets
from accord.core.crypto import Cipher
from accord.core.redis_keys import RedisKeys
from accord.store.deployment import redis_keys_of
from accord.store.engine import create_engine, read_tx, resolve_db_url, write_tx
from accord.store.migrate import upgrade
from accord.store.reseal import ResealCount
from accord.vault.reseal import VaultOriginals

__all__ = [
    "Resealer",
    "RotationReport",
    "default_resealers",
    "invalidate_caches",
    "rotate",
    "rotate_database",
]

log = logging.getLogger("accord.keys")
_REDIS_FAILURES: tuple[type[BaseException], ...] = (*REDIS_DOWN_ERRORS, RedisError)


class Resealer(Protocol):
    """One capability's sealed data in one database."""

    @property
    def name(self) -> str: ...

    async def reseal(self, conn: AsyncConnection, cipher: Cipher, *, dry_run: bool) -> ResealCount:
        """Seal every blob not under ``cipher.active`` again under it, inside the caller's transaction."""
        ...

    async def kept_keys(self, conn: AsyncConnection) -> list[str]:
        """Key ids this capability needs for good, whatever seals its blobs."""
        ...

    async def invalidate(self, client: RedisClient, keys: RedisKeys) -> None:
        """Drop the copies of old blobs this capability keeps in Redis."""
        ...


def default_resealers() -> tuple[Resealer, ...]:
    return (ConfigSecrets(), VaultOriginals())


@dataclass
class RotationReport:
    dry_run: bool
    active_key_id: str
    capabilities: list[ResealCount] = field(default_factory=list)
    kept_key_ids: list[str] = field(default_factory=list)  # never to be deleted
    caches_invalidated: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(count.total for count in self.capabilities)

    @property
    def by_key_id(self) -> Counter[str]:
        """Blobs per key id before the rotation, over every capability."""
        total: Counter[str] = Counter()
        for count in self.capabilities:
            total.update(count.by_key_id)
        return total

    def count(self, capability: str) -> ResealCount:
        return next(count for count in self.capabilities if count.capability == capability)

    def as_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "active_key_id": self.active_key_id,
            "reencrypted": {count.capability: dict(count.resealed) for count in self.capabilities},
            "capabilities": {count.capability: count.as_dict() for count in self.capabilities},
            "blobs_by_key_id_before": dict(sorted(self.by_key_id.items())),
            "never_delete_key_ids": list(self.kept_key_ids),
            "caches_invalidated": list(self.caches_invalidated),
        }


async def rotate(
    engine: AsyncEngine,
    cipher: Cipher,
    *,
    dry_run: bool,
    redis_url: str | None = None,
    resealers: Sequence[Resealer] | None = None,
) -> RotationReport:
    """Reseal everything in ``engine``'s database under ``cipher.active``: one transaction, all or nothing.

    ``cipher`` must hold every key that sealed a stored blob. With ``redis_url`` (and not a dry run)
    the Redis caches of old blobs are invalidated afterwards; that is best effort, logged if it fails.
    """
    chosen = default_resealers() if resealers is None else tuple(resealers)
    report = RotationReport(dry_run, cipher.active)
    async with read_tx(engine) if dry_run else write_tx(engine) as conn:
        for resealer in chosen:
            report.capabilities.append(await resealer.reseal(conn, cipher, dry_run=dry_run))
            report.kept_key_ids += [key for key in await resealer.kept_keys(conn) if key not in report.kept_key_ids]
    if redis_url and not dry_run:
        report.caches_invalidated = await invalidate_caches(redis_url, chosen, await redis_keys_of(engine))
    return report


async def rotate_database(
    db_url: str | None, cipher: Cipher, *, dry_run: bool, redis_url: str | None = None
) -> RotationReport:
    """``rotate`` on the database at ``db_url`` (default ACCORD_DB_URL), brought to the current schema first."""
    engine = create_engine(resolve_db_url(db_url))
    try:
        await upgrade(engine)
        return await rotate(engine, cipher, dry_run=dry_run, redis_url=redis_url)
    finally:
        await engine.dispose()


async def invalidate_caches(redis_url: str, resealers: Sequence[Resealer], keys: RedisKeys) -> list[str]:
    """Each capability drops its Redis copies of old blobs; returns the names of those that did."""
    client = redis_client(redis_url)
    done: list[str] = []
    try:
        for resealer in resealers:
            try:
                await resealer.invalidate(client, keys)
            except _REDIS_FAILURES as exc:  # the old key still opens what they hold
                log.warning(
                    "could not invalidate the %s cache in redis (rebuilt when next missed): %s", resealer.name, exc
                )
            else:
                done.append(resealer.name)
    finally:
        with contextlib.suppress(*_REDIS_FAILURES):
            await client.aclose()
    return done
