"""Resealing the vault's encrypted originals in the database, page by page inside the caller's transaction."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.core.crypto import Cipher
from accord.store.reseal import ResealCount, reseal_blob
from accord.vault._sql import tables as t
from accord.vault.sealing import original_aad

__all__ = ["reseal_originals"]

_PAGE = 1000
m = t.mapping


async def reseal_originals(conn: AsyncConnection, cipher: Cipher, count: ResealCount, *, dry_run: bool) -> None:
    """Every live mapping's original under ``cipher.active`` (tombstones hold none). Fingerprints stay as
    they are: they are keyed by the pinned fingerprint key, not by the key that seals."""
    after: tuple[str, str] | None = None
    while True:
        query = sa.select(m.c.scope, m.c.token, m.c.original).where(m.c.original.is_not(None))
        if after is not None:
            query = query.where(sa.tuple_(m.c.scope, m.c.token) > sa.tuple_(*after))
        rows = (await conn.execute(query.order_by(m.c.scope, m.c.token).limit(_PAGE))).all()
        for row in rows:
            what = f"vault original of {row.token} in scope {row.scope!r}"
            aad = original_aad(row.scope, row.token)
            blob = reseal_blob(cipher, bytes(row.original), aad=aad, count=count, part="mappings", what=what)
            if blob is not None and not dry_run:
                where = sa.and_(m.c.scope == row.scope, m.c.token == row.token)
                await conn.execute(sa.update(m).where(where).values(original=blob))
        if len(rows) < _PAGE:
            return
        after = (rows[-1].scope, rows[-1].token)
