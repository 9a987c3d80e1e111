"""Rows of the kv tables as the store's values (Entry, Change)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from accord.store.types import Change, Entry, Op


def utc(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; every accord timestamp is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def entry_from_row(row: sa.Row[Any]) -> Entry:
    return Entry(
        key=row.key,
        value=bytes(row.value),
        version=int(row.version),
        create_revision=int(row.create_revision),
        mod_revision=int(row.mod_revision),
        secret=bool(row.secret),
        updated_at=utc(row.updated_at),
        updated_by=row.updated_by,
    )


def change_from_row(row: sa.Row[Any]) -> Change:
    op: Op = "delete" if row.op == "delete" else "put"
    value = bytes(row.value) if row.value is not None else None
    return Change(
        row.revision,
        row.key,
        op,
        int(row.version),
        value,
        bool(row.secret),
        row.actor,
        utc(row.at),
        action=row.action,
        request_id=row.request_id,
    )
