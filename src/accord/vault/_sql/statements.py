"""The database side of mappings: statements that run inside a caller's transaction.

The database is the arbiter of get-or-create: the unique constraint on (scope, type, fingerprint)
means two writers racing for one original end with one live row, and the loser adopts it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from accord.store.dialect import insert, is_postgres
from accord.store.engine import translate_errors
from accord.vault._sql import tables as t
from accord.vault.records import Found, Item, NewRow, TokenRow
from accord.vault.types import VaultStats

__all__ = [
    "add_counts",
    "autocommit",
    "fetch_live",
    "insert_new",
    "lookup_tokens",
    "now_utc",
    "select_idle",
    "stats",
    "tombstone",
    "touch_tokens",
    "utc",
]

T = TypeVar("T")
_CHUNK = 500
m = t.mapping


def utc(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; everything accord writes is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _chunks(values: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


async def fetch_live(conn: AsyncConnection, scope: str, items: Sequence[Item]) -> dict[bytes, Found]:
    """Live mappings of ``items``, by field."""
    wanted = {item.field for item in items}
    found: dict[bytes, Found] = {}
    for chunk in _chunks(items):
        query = sa.select(m.c.type, m.c.fingerprint, m.c.token, m.c.original, m.c.last_used_at).where(
            m.c.scope == scope,
            m.c.type.in_(sorted({item.token_type for item in chunk})),
            m.c.fingerprint.in_([item.fingerprint for item in chunk]),
            m.c.expired_at.is_(None),
        )
        for row in (await conn.execute(query)).all():
            field = row.type.encode() + b":" + row.fingerprint
            if field in wanted:
                found[field] = Found(row.token, row.original, utc(row.last_used_at))
    return found


# PostgreSQL: one statement with an array parameter per column, which the driver encodes natively, in
# place of a parameter per value that SQLAlchemy processes one by one. Rows go in in the order given.
_PG_INSERT = sa.text(
    f"INSERT INTO {m.name} (scope, token, type, number, fingerprint, original, created_at, last_used_at) "
    "SELECT CAST(:scope AS TEXT), r.token, r.type, r.number, r.fingerprint, r.original, "
    "CAST(:now AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ) FROM unnest(CAST(:tokens AS TEXT[]), "
    "CAST(:types AS TEXT[]), CAST(:numbers AS BIGINT[]), CAST(:fingerprints AS BYTEA[]), CAST(:originals AS BYTEA[])) "
    "WITH ORDINALITY AS r(token, type, number, fingerprint, original, position) ORDER BY r.position "
    "ON CONFLICT DO NOTHING"
)


async def insert_new(conn: AsyncConnection, scope: str, now: datetime, rows: Sequence[NewRow]) -> int:
    """Insert mappings in the order given, skipping any that collide with an existing one; returns how many went in."""
    if not rows:
        return 0
    if is_postgres(conn):
        arrays = {
            "tokens": [row.token for row in rows],
            "types": [row.item.token_type for row in rows],
            "numbers": [row.number for row in rows],
            "fingerprints": [row.item.fingerprint for row in rows],
            "originals": [row.blob for row in rows],
        }
        return int((await conn.execute(_PG_INSERT, {"scope": scope, "now": now, **arrays})).rowcount)
    values = [
        {
            "scope": scope,
            "token": row.token,
            "type": row.item.token_type,
            "number": row.number,
            "fingerprint": row.item.fingerprint,
            "original": row.blob,
            "created_at": now,
            "last_used_at": now,
            "expired_at": None,
        }
        for row in rows
    ]
    # executemany: one cached statement that SQLAlchemy batches itself ("insertmanyvalues").
    stmt = insert(conn)(m).on_conflict_do_nothing().returning(m.c.token)
    return len((await conn.execute(stmt, values)).scalars().all())


async def lookup_tokens(conn: AsyncConnection, scope: str, tokens: Sequence[str]) -> dict[str, TokenRow]:
    found: dict[str, TokenRow] = {}
    for chunk in _chunks(tokens):
        query = sa.select(m.c.token, m.c.type, m.c.fingerprint, m.c.original, m.c.expired_at, m.c.last_used_at)
        rows = (await conn.execute(query.where(m.c.scope == scope, m.c.token.in_(list(chunk))))).all()
        for row in rows:
            found[row.token] = TokenRow(
                row.token, row.type, row.fingerprint, row.original, row.expired_at is not None, utc(row.last_used_at)
            )
    return found


async def touch_tokens(conn: AsyncConnection, scope: str, tokens: Iterable[str], at: datetime) -> set[str]:
    """Move last use forward to ``at`` (never back) for live mappings; returns the tokens that are live.

    Reading the result in the same statement is what protects a mapping from a concurrent expiry:
    a tombstone is only written while last use is old, and this makes it recent first (or finds
    the row already expired).
    """
    touched: set[str] = set()
    for chunk in _chunks(sorted(set(tokens))):
        result = await conn.execute(
            sa.update(m)
            .where(m.c.scope == scope, m.c.token.in_(list(chunk)), m.c.expired_at.is_(None))
            .values(last_used_at=sa.case((m.c.last_used_at < at, at), else_=m.c.last_used_at))
            .returning(m.c.token)
        )
        touched.update(result.scalars().all())
    return touched


async def add_counts(conn: AsyncConnection, counts: Mapping[str, int]) -> None:
    for name, value in sorted(counts.items()):
        if value:
            await conn.execute(
                sa.update(t.counter).where(t.counter.c.name == name).values(value=t.counter.c.value + value)
            )


async def select_idle(conn: AsyncConnection, before: datetime, limit: int) -> list[tuple[str, str, bytes]]:
    """(scope, token, field) of live mappings the database last saw used before ``before``."""
    query = (
        sa.select(m.c.scope, m.c.token, m.c.type, m.c.fingerprint)
        .where(m.c.expired_at.is_(None), m.c.last_used_at < before)
        .order_by(m.c.last_used_at)
        .limit(limit)
    )
    rows = (await conn.execute(query)).all()
    return [(row.scope, row.token, row.type.encode() + b":" + row.fingerprint) for row in rows]


async def tombstone(conn: AsyncConnection, scope: str, tokens: Sequence[str], before: datetime, now: datetime) -> int:
    """Expire mappings still idle since ``before``: the original and its fingerprint are erased, the token kept."""
    done = 0
    for chunk in _chunks(sorted(tokens)):
        result = await conn.execute(
            sa.update(m)
            .where(m.c.scope == scope, m.c.token.in_(list(chunk)), m.c.expired_at.is_(None), m.c.last_used_at < before)
            .values(expired_at=now, original=None, fingerprint=None)
        )
        done += result.rowcount
    return done


async def stats(conn: AsyncConnection, scope: str | None) -> VaultStats:
    live = sa.select(m.c.type, sa.func.count()).where(m.c.expired_at.is_(None)).group_by(m.c.type)
    expired = sa.select(sa.func.count()).select_from(m).where(m.c.expired_at.is_not(None))
    if scope is not None:
        live, expired = live.where(m.c.scope == scope), expired.where(m.c.scope == scope)
    per_type = {row[0]: int(row[1]) for row in (await conn.execute(live)).all()}
    counters = {row.name: int(row.value) for row in (await conn.execute(sa.select(t.counter))).all()}
    return VaultStats(
        mappings=dict(sorted(per_type.items())),
        expired=int(await conn.scalar(expired) or 0),
        unmask_misses=counters.get(t.UNMASK_MISSES, 0),
        unmask_expired=counters.get(t.UNMASK_EXPIRED, 0),
    )


@contextlib.asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection whose every statement commits on its own, with driver errors translated."""
    with translate_errors(engine):
        async with engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")


def now_utc() -> datetime:
    return datetime.now(UTC)
