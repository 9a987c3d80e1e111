"""Config's sealed data: secret values in ``accord_kv`` and ``accord_kv_history``, resealed in place.

Revisions and versions are not touched: the values do not change, so no process has anything to
re-read, and a process still holding only the old key keeps serving what it holds. The Redis value
cache holds the old blobs, so after a rotation it is invalidated and rebuilt from the database.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.core.crypto import Cipher
from accord.core.redis_keys import RedisKeys
from accord.store import tables as t
from accord.store.reseal import ResealCount, reseal_blob

if TYPE_CHECKING:
    from accord.bus.redis_conn import RedisClient

__all__ = ["ConfigSecrets"]


class ConfigSecrets:
    """The resealer of config secrets (current values and history), for ``accord.keys.rotate``."""

    name = "config"

    async def reseal(self, conn: AsyncConnection, cipher: Cipher, *, dry_run: bool) -> ResealCount:
        """Inside the caller's transaction; a secret is bound to its key (the AAD), wherever it is stored."""
        count = ResealCount(self.name, {"kv": 0, "history": 0})
        current = (await conn.execute(sa.select(t.kv.c.key, t.kv.c.value).where(t.kv.c.secret))).all()
        for row in current:
            what = f"current value of {json.dumps(row.key)}"
            blob = reseal_blob(cipher, bytes(row.value), aad=row.key.encode(), count=count, part="kv", what=what)
            if blob is not None and not dry_run:
                await conn.execute(sa.update(t.kv).where(t.kv.c.key == row.key).values(value=blob))
        h = t.kv_history.c
        history = (
            await conn.execute(sa.select(h.revision, h.key, h.value).where(h.secret, h.value.is_not(None)))
        ).all()
        for old in history:
            what = f"{json.dumps(old.key)} at revision {old.revision}"
            blob = reseal_blob(cipher, bytes(old.value), aad=old.key.encode(), count=count, part="history", what=what)
            if blob is not None and not dry_run:
                await conn.execute(sa.update(t.kv_history).where(h.revision == old.revision).values(value=blob))
        return count

    async def kept_keys(self, _conn: AsyncConnection) -> list[str]:
        return []  # every config secret opens with whichever key sealed it: none is needed forever

    async def invalidate(self, client: RedisClient, keys: RedisKeys) -> None:
        """The value cache holds the old blobs: drop its marker, so the next revision check rebuilds it."""
        await client.delete(keys.cache_revision)
