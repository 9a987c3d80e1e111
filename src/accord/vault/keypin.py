"""Pin the key that makes vault fingerprints, so a key rotation never changes an original's token.

The first vault to open a database records the id of its fingerprint key (a 32-bit id, stored as
an integer in the vault's counter table); every later process keys fingerprints with that one,
whatever key currently seals new blobs.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from accord.core.crypto import Cipher
from accord.store.engine import is_sqlite, write_tx
from accord.vault import tables as t

FINGERPRINT_KEY_ROW = "fingerprint_key"


async def pin_fingerprint_key(engine: AsyncEngine, cipher: Cipher) -> Cipher:
    mine = int(cipher.fingerprint_key_id.removeprefix("k"), 16)
    insert = sqlite_insert if is_sqlite(engine) else pg_insert
    async with write_tx(engine) as conn:
        await conn.execute(
            insert(t.counter)
            .values(name=FINGERPRINT_KEY_ROW, value=mine)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        pinned = int(
            (
                await conn.execute(sa.select(t.counter.c.value).where(t.counter.c.name == FINGERPRINT_KEY_ROW))
            ).scalar_one()
        )
    key_id = f"k{pinned:08x}"
    return cipher if key_id == cipher.fingerprint_key_id else cipher.with_fingerprint_key(key_id)
