"""The ``accord_event`` table (migration 0009): idempotent batch inserts and filtered reads.

Inserts are ``ON CONFLICT (event_id) DO NOTHING`` in one transaction per batch (executemany), so a
redelivered stream entry, a replayed spool segment or a producer that fell back to the database
directly never makes a second row. The table lives here, not in ``tables.py``, because only the
events capability uses it; the migration is written against the same names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from accord.store.dialect import insert
from accord.store.engine import read_tx, write_tx

__all__ = [
    "EVENT_COLUMNS",
    "EventFilter",
    "EventRow",
    "ProducerReport",
    "count_by",
    "event_table",
    "insert_events",
    "producer_reports",
    "remove_producer_report",
    "select_events",
    "write_producer_report",
]

_metadata = sa.MetaData()
event_table = sa.Table(
    "accord_event",
    _metadata,
    sa.Column("event_id", sa.String(200), primary_key=True),
    sa.Column("ts", sa.Float(precision=53), nullable=False),
    sa.Column("service", sa.String(200), nullable=False),
    sa.Column("route", sa.String(512), nullable=False),
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("request_id", sa.String(200), nullable=True),
    sa.Column("sampling_rule", sa.String(16), nullable=False),
    sa.Column("producer", sa.String(32), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)
_c = event_table.c
producer_table = sa.Table(
    "accord_event_producer",
    _metadata,
    sa.Column("producer", sa.String(32), primary_key=True),
    sa.Column("service", sa.String(200), nullable=False),
    sa.Column("instance", sa.String(300), nullable=False),
    sa.Column("reported_at", sa.Float(precision=53), nullable=False),
    sa.Column("report", sa.Text, nullable=False),
)
_p = producer_table.c
EVENT_COLUMNS = ("event_id", "service", "route", "status", "request_id", "sampling_rule", "producer", "seq")


class EventRow(TypedDict):
    event_id: str
    ts: float
    service: str
    route: str
    status: int | None
    request_id: str | None
    sampling_rule: str
    producer: str
    seq: int
    body: str


@dataclass(frozen=True)
class EventFilter:
    """Column equalities (``EVENT_COLUMNS`` only), a lower bound on ``ts``, newest first, at most ``limit``."""

    equals: tuple[tuple[str, str], ...] = ()
    since: float | None = None
    limit: int = 100


async def insert_events(engine: AsyncEngine, rows: Sequence[EventRow]) -> None:
    """Insert every row not already present, in one transaction; an existing ``event_id`` is left as it is."""
    if not rows:
        return
    stmt = insert(engine)(event_table).on_conflict_do_nothing(index_elements=[_c.event_id])
    async with write_tx(engine) as conn:
        await conn.execute(stmt, list(rows))


async def select_events(engine: AsyncEngine, query: EventFilter) -> list[EventRow]:
    stmt = sa.select(event_table).order_by(_c.ts.desc(), _c.seq.desc()).limit(query.limit)
    for name, value in query.equals:
        column = _c[name]
        stmt = stmt.where(column == (int(value) if name in ("status", "seq") else value))
    if query.since is not None:
        stmt = stmt.where(_c.ts >= query.since)
    async with read_tx(engine) as conn:
        result = await conn.execute(stmt)
        return [EventRow(**row._mapping) for row in result]  # type: ignore[typeddict-item]


async def count_by(engine: AsyncEngine, column: str, since: float | None = None) -> dict[str, int]:
    """Row counts grouped by one column (``sampling_rule``, ``status`` ...), keys as text."""
    col: Any = _c[column]
    stmt = sa.select(col, sa.func.count()).group_by(col)
    if since is not None:
        stmt = stmt.where(_c.ts >= since)
    async with read_tx(engine) as conn:
        return {str(key): int(n) for key, n in (await conn.execute(stmt)).all()}


@dataclass(frozen=True)
class ProducerReport:
    """One producer's last report (migration 0010): ``report`` is its JSON text."""

    producer: str
    service: str
    instance: str
    reported_at: float
    report: str


async def write_producer_report(engine: AsyncEngine, row: ProducerReport) -> None:
    values = {"service": row.service, "instance": row.instance, "reported_at": row.reported_at, "report": row.report}
    async with write_tx(engine) as conn:
        done = await conn.execute(sa.update(producer_table).where(_p.producer == row.producer).values(**values))
        if done.rowcount == 0:
            await conn.execute(sa.insert(producer_table).values(producer=row.producer, **values))


async def remove_producer_report(engine: AsyncEngine, producer: str) -> None:
    async with write_tx(engine) as conn:
        await conn.execute(sa.delete(producer_table).where(_p.producer == producer))


async def producer_reports(engine: AsyncEngine, since: float) -> list[ProducerReport]:
    """Reports written at or after ``since`` (unix seconds), by service and instance."""
    async with read_tx(engine) as conn:
        rows = (
            await conn.execute(
                sa.select(producer_table).where(_p.reported_at >= since).order_by(_p.service, _p.instance)
            )
        ).all()
    return [ProducerReport(r.producer, r.service, r.instance, float(r.reported_at), r.report) for r in rows]
