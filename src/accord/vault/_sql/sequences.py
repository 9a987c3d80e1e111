"""Sequence ranges in the database: the high-water mark every number ever issued stays below."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from accord.store.dialect import insert
from accord.store.engine import read_tx, write_tx
from accord.vault._sql import tables as t

__all__ = ["SqlCounters", "lock_sequences", "names_under", "reserve_range", "reserved"]


async def reserve_range(conn: AsyncConnection, name: str, count: int) -> range:
    """Raise the high-water mark of ``name`` by ``count`` inside the caller's transaction; the range is ours alone."""
    stmt = (
        insert(conn)(t.sequence)
        .values(type=name, reserved=count)
        .on_conflict_do_update(index_elements=[t.sequence.c.type], set_={"reserved": t.sequence.c.reserved + count})
        .returning(t.sequence.c.reserved)
    )
    top = int((await conn.execute(stmt)).scalar_one())
    return range(top - count + 1, top + 1)


async def lock_sequences(conn: AsyncConnection, names: Iterable[str]) -> None:
    """Lock the rows of ``names`` (creating missing ones) in a fixed order, so two writers cannot deadlock."""
    for name in sorted(set(names)):
        await reserve_range(conn, name, 0)


async def reserved(engine: AsyncEngine, name: str) -> int:
    async with read_tx(engine) as conn:
        value = await conn.scalar(sa.select(t.sequence.c.reserved).where(t.sequence.c.type == name))
    return int(value or 0)


class SqlCounters:
    """Numbers straight from the database: each call reserves exactly what it hands out (one row update)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def take(self, name: str, count: int) -> range:
        async with write_tx(self.engine) as conn:
            return await reserve_range(conn, name, count)


async def names_under(engine: AsyncEngine, prefix: str) -> list[str]:
    """Names of the sequences that start with ``prefix`` (the vault's: one per token type)."""
    query = sa.select(t.sequence.c.type).where(t.sequence.c.type.startswith(prefix))
    async with read_tx(engine) as conn:
        return list((await conn.execute(query)).scalars().all())
