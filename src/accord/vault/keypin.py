"""Pin the key that makes vault fingerprints, so a key rotation never changes an original's token.

The first vault to open a database records the id of its fingerprint key (a 32-bit id, stored as
an integer in the vault's counter table); every later process keys fingerprints with that one,
whatever key currently seals new blobs.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from accord.core.crypto import Cipher
from accord.store.dialect import insert
from accord.store.engine import write_tx
from accord.vault._sql import tables as t

FINGERPRINT_KEY_ROW = "fingerprint_key"


async def pin_fingerprint_key(engine: AsyncEngine, cipher: Cipher) -> Cipher:
    mine = int(cipher.fingerprint_key_id.removeprefix("k"), 16)
    async with write_tx(engine) as conn:
        await conn.execute(
            insert(conn)(t.counter)
            .values(name=FINGERPRINT_KEY_ROW, value=mine)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        key_id = await pinned_key_id(conn)
    assert key_id is not None
    return cipher if key_id == cipher.fingerprint_key_id else cipher.with_fingerprint_key(key_id)


async def pinned_key_id(conn: AsyncConnection) -> str | None:
    """The id of the key every vault fingerprint is made with; None before any vault opened the database.

    That key can never be retired: without it no original already stored can be found by its value.
    """
    query = sa.select(t.counter.c.value).where(t.counter.c.name == FINGERPRINT_KEY_ROW)
    pinned = (await conn.execute(query)).scalar_one_or_none()
    return None if pinned is None else f"k{int(pinned):08x}"
