"""The fleet table: one row per live instance, outside the revisioned store (no revisions, no history)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from accord.store import tables as t
from accord.store.engine import read_tx, translate_errors, write_tx
from accord.store.kv import engine_of
from accord.store.types import KVStore

__all__ = ["InstanceRow", "InstanceStore", "SqlInstanceStore", "instance_store"]


@dataclass(frozen=True)
class InstanceRow:
    id: str
    service: str
    host: str
    pid: int
    version: str
    applied_revision: int
    started_at: datetime
    heartbeat_at: datetime


class InstanceStore(Protocol):
    async def upsert(self, row: InstanceRow) -> None: ...
    async def remove(self, instance_id: str) -> None: ...
    async def list(self) -> list[InstanceRow]: ...
    async def expire(self, before: datetime) -> int: ...


class SqlInstanceStore:
    """``accord_instance`` on the store's engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def upsert(self, row: InstanceRow) -> None:
        values = {
            "service": row.service,
            "host": row.host,
            "pid": row.pid,
            "version": row.version,
            "applied_revision": row.applied_revision,
            "started_at": row.started_at,
            "heartbeat_at": row.heartbeat_at,
        }
        with translate_errors(self._engine):
            async with write_tx(self._engine) as conn:
                done = await conn.execute(sa.update(t.instance).where(t.instance.c.id == row.id).values(**values))
                if done.rowcount == 0:
                    await conn.execute(sa.insert(t.instance).values(id=row.id, **values))

    async def remove(self, instance_id: str) -> None:
        with translate_errors(self._engine):
            async with write_tx(self._engine) as conn:
                await conn.execute(sa.delete(t.instance).where(t.instance.c.id == instance_id))

    async def list(self) -> list[InstanceRow]:
        with translate_errors(self._engine):
            async with read_tx(self._engine) as conn:
                rows = (await conn.execute(sa.select(t.instance).order_by(t.instance.c.service, t.instance.c.id))).all()
        return [
            InstanceRow(
                str(r.id),
                str(r.service),
                str(r.host),
                int(r.pid),
                str(r.version),
                int(r.applied_revision),
                r.started_at,
                r.heartbeat_at,
            )
            for r in rows
        ]

    async def expire(self, before: datetime) -> int:
        """Delete rows whose last heartbeat is older than ``before``; returns how many."""
        with translate_errors(self._engine):
            async with write_tx(self._engine) as conn:
                done = await conn.execute(sa.delete(t.instance).where(t.instance.c.heartbeat_at < before))
        return int(done.rowcount or 0)


def instance_store(store: KVStore) -> SqlInstanceStore:
    """The fleet table of the database under ``store``."""
    return SqlInstanceStore(engine_of(store))
