"""Batch inserts into ``accord_event``: COPY into a session's temporary table, then one idempotent INSERT.

The store's ``insert_events`` (SQLAlchemy executemany, ``ON CONFLICT (event_id) DO NOTHING``) spends
most of a large batch binding parameters row by row in Python. On PostgreSQL (asyncpg), one
transaction instead does

    CREATE TEMP TABLE IF NOT EXISTS accord_event_in (LIKE accord_event) ON COMMIT DELETE ROWS
    COPY accord_event_in (…) FROM STDIN (FORMAT binary)            -- asyncpg's copy_records_to_table
    INSERT INTO accord_event SELECT * FROM accord_event_in ON CONFLICT (event_id) DO NOTHING

so the rows cross as binary COPY data and the same key rule applies: a redelivered row is absorbed,
also twice within one batch (``DO NOTHING`` sees rows the statement itself inserted). The temporary
table lives per connection and is emptied by the commit. Any other database uses ``insert_events``:
the choice is made on the driver connection (asyncpg's has COPY), so no SQL dialect is named here
(store/dialect.py keeps that).
Errors are the store's: an outage is StoreUnavailableError, a row the database refuses is
:class:`RefusedBatchError` (the consumer then retries entry by entry).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from accord.core.errors import StoreUnavailableError
from accord.store.engine import translate_errors
from accord.store.events import EventRow, insert_events

__all__ = ["RefusedBatchError", "insert_rows"]

_COLUMNS = ("event_id", "ts", "service", "route", "status", "request_id", "sampling_rule", "producer", "seq", "body")
_STAGING = "accord_event_in"
CREATE_SQL = f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (LIKE accord_event) ON COMMIT DELETE ROWS"
INSERT_SQL = (
    f"INSERT INTO accord_event ({', '.join(_COLUMNS)}) SELECT {', '.join(_COLUMNS)} FROM {_STAGING} "
    "ON CONFLICT (event_id) DO NOTHING"
)
# errors that mean the server or the connection went away (SQLSTATE classes 08, 53, 57, 58), not a refused row
_OUTAGES = (
    asyncpg.PostgresConnectionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,
    asyncpg.PostgresSystemError,
)


_ARGUMENT = re.compile(r"query argument \$(\d+):.*\(([^()]*)\)\s*$", re.DOTALL)


async def _insert_events(engine: AsyncEngine, rows: Sequence[EventRow]) -> None:
    try:
        await insert_events(engine, rows)
    except sa.exc.DBAPIError as exc:
        raise RefusedBatchError(str(exc.orig).splitlines()[0][:300] if exc.orig else "refused") from exc


def _refusal(exc: Exception) -> str:
    """The refusal's one line, naming the column; never the values (asyncpg quotes the whole array)."""
    text = str(exc)
    found = _ARGUMENT.search(text)
    if found:
        return f"{type(exc).__name__}: column {_COLUMNS[int(found[1]) - 1]}: {found[2][:200]}"
    return f"{type(exc).__name__}: {text.splitlines()[0][:300] if text else 'refused'}"


class RefusedBatchError(Exception):
    """Internal: the database refused a value of the batch (not an outage); the consumer retries per entry."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


async def insert_rows(engine: AsyncEngine, rows: Sequence[EventRow]) -> None:
    """Insert every row whose ``event_id`` is not in the table yet; atomic per call."""
    if not rows:
        return
    with translate_errors(engine):
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            if not isinstance(driver, asyncpg.Connection):  # a driver without COPY (aiosqlite): the store's insert
                await conn.close()
                await _insert_events(engine, rows)
                return
            records: list[tuple[Any, ...]] = [tuple(row[name] for name in _COLUMNS) for row in rows]  # type: ignore[literal-required]
            try:
                async with driver.transaction():
                    await driver.execute(CREATE_SQL)
                    await driver.copy_records_to_table(_STAGING, records=records, columns=_COLUMNS)
                    await driver.execute(INSERT_SQL)
            except _OUTAGES as exc:
                await conn.invalidate()
                raise StoreUnavailableError(f"database is unavailable: {type(exc).__name__}") from exc
            except asyncpg.PostgresError as exc:
                raise RefusedBatchError(_refusal(exc)) from exc
            except (asyncpg.DataError, ValueError, TypeError, OverflowError) as exc:  # a value asyncpg cannot encode
                raise RefusedBatchError(_refusal(exc)) from exc
            except (asyncpg.InterfaceError, OSError) as exc:
                await conn.invalidate()
                raise StoreUnavailableError(f"database is unavailable: {type(exc).__name__}: {exc}") from exc
