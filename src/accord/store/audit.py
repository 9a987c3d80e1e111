"""Reading history as an audit trail: each change beside the value it replaced."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from accord.store import tables as t
from accord.store.engine import read_tx
from accord.store.rows import change_from_row
from accord.store.types import AuditFilter, AuditRow

__all__ = ["AuditFilter", "AuditRow", "audit_rows"]


async def audit_rows(engine: AsyncEngine, flt: AuditFilter) -> list[AuditRow]:
    """Newest first: (change, previous value of that key, whether the previous value was secret)."""
    h = t.kv_history.c
    inner: sa.Select[Any] = sa.select(
        *t.kv_history.c,
        sa.func.lag(h.value).over(partition_by=h.key, order_by=h.revision).label("prev_value"),
        sa.func.lag(h.secret).over(partition_by=h.key, order_by=h.revision).label("prev_secret"),
    )
    if flt.key_prefix:
        inner = inner.where(h.key.startswith(flt.key_prefix, autoescape=True))
    sub = inner.subquery()
    query = sa.select(sub).order_by(sub.c.revision.desc()).limit(flt.limit)
    if flt.actor is not None:
        query = query.where(sub.c.actor == flt.actor)
    if flt.action is not None:
        query = query.where(sub.c.action == flt.action)
    if flt.since is not None:
        query = query.where(sub.c.at >= flt.since)
    if flt.before_revision is not None:
        query = query.where(sub.c.revision < flt.before_revision)
    async with read_tx(engine) as conn:
        rows = (await conn.execute(query)).all()
    return [(change_from_row(row), _bytes(row.prev_value), bool(row.prev_secret)) for row in rows]


def _bytes(value: bytes | memoryview | None) -> bytes | None:
    return bytes(value) if value is not None else None
