"""Named deadlines in database time: leases, TTL-check timers and replica heartbeats.

A timer is liveness, not state. Arming one writes a row of ``accord_timer`` and nothing else: no
revision, no history row, no bus message, so a heartbeat every few seconds wakes no watcher and
grows no history. Every deadline is computed and compared by the database's clock
(``dialect.db_now``), so replicas whose clocks disagree still agree on who holds a lease.

``acquire`` is one statement (an upsert whose update only applies when the row is free, expired
or already the caller's), so two replicas racing for a lease cannot both win it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from accord.store import tables as t
from accord.store.dialect import db_now, db_now_plus, insert
from accord.store.engine import read_tx, write_tx

__all__ = ["SqlTimers"]

_c = t.timer.c


class SqlTimers:
    """The ``Timers`` of an SQL store (see ``store.types.Timers``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def arm(self, name: str, seconds: float) -> None:
        """Set ``name`` to expire ``seconds`` from now (creating it), whoever held it."""
        ins = insert(self._engine)(t.timer).values(name=name, holder="", deadline=db_now_plus(self._engine, seconds))
        stmt = ins.on_conflict_do_update(index_elements=[_c.name], set_={"deadline": ins.excluded.deadline})
        async with write_tx(self._engine) as conn:
            await conn.execute(stmt)

    async def arm_absent(self, name: str, seconds: float) -> bool:
        """Arm ``name`` only if it has no timer at all (expired ones count as present); True if armed now."""
        ins = insert(self._engine)(t.timer).values(name=name, holder="", deadline=db_now_plus(self._engine, seconds))
        stmt = ins.on_conflict_do_nothing(index_elements=[_c.name]).returning(_c.name)
        async with write_tx(self._engine) as conn:
            return (await conn.execute(stmt)).first() is not None

    async def disarm(self, name: str) -> None:
        async with write_tx(self._engine) as conn:
            await conn.execute(sa.delete(t.timer).where(_c.name == name))

    async def expired(self, prefix: str = "") -> list[str]:
        """Names under ``prefix`` whose deadline has passed, sorted."""
        return await self._names(prefix, _c.deadline <= db_now(self._engine))

    async def alive(self, prefix: str = "") -> list[str]:
        """Names under ``prefix`` whose deadline is still ahead, sorted."""
        return await self._names(prefix, _c.deadline > db_now(self._engine))

    async def acquire(self, name: str, holder: str, seconds: float) -> bool:
        """Take ``name`` for ``holder`` if it is free or expired, or renew it if ``holder`` has it; one statement."""
        ins = insert(self._engine)(t.timer).values(
            name=name, holder=holder, deadline=db_now_plus(self._engine, seconds)
        )
        stmt = ins.on_conflict_do_update(
            index_elements=[_c.name],
            set_={"holder": ins.excluded.holder, "deadline": ins.excluded.deadline},
            where=sa.or_(_c.holder == ins.excluded.holder, _c.deadline <= db_now(self._engine)),
        ).returning(_c.holder)
        async with write_tx(self._engine) as conn:
            row = (await conn.execute(stmt)).first()
        return row is not None and row[0] == holder

    async def release(self, name: str, holder: str) -> None:
        """Give ``name`` up, if ``holder`` still has it (someone else's lease is left alone)."""
        async with write_tx(self._engine) as conn:
            await conn.execute(sa.delete(t.timer).where(_c.name == name, _c.holder == holder))

    async def holder(self, name: str) -> str | None:
        """Who holds ``name`` now; None if nobody does (no timer, or it expired)."""
        query = sa.select(_c.holder).where(_c.name == name, _c.deadline > db_now(self._engine))
        async with read_tx(self._engine) as conn:
            value = await conn.scalar(query)
        return None if value is None else str(value)

    async def _names(self, prefix: str, condition: sa.ColumnElement[bool]) -> list[str]:
        query = sa.select(_c.name).where(condition).order_by(_c.name)
        if prefix:
            query = query.where(_c.name.startswith(prefix, autoescape=True))
        async with read_tx(self._engine) as conn:
            return [str(name) for name in (await conn.scalars(query)).all()]
