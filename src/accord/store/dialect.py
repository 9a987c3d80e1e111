"""The one place that knows SQLite and PostgreSQL differ.

Every branch on the SQL dialect lives here, so a caller asks a question ("may this statement run
in autocommit?", "which INSERT has ON CONFLICT?") instead of testing a dialect name; a third
dialect would be one edit in this module.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["Bind", "insert", "is_postgres", "is_sqlite"]

InsertClass = type[postgresql.Insert] | type[sqlite.Insert]


class _Dialect(Protocol):
    name: str


class Bind(Protocol):
    """An engine or a connection: anything that carries a dialect."""

    @property
    def dialect(self) -> _Dialect: ...


def is_sqlite(bind: Bind) -> bool:
    return bind.dialect.name == "sqlite"


def is_postgres(bind: Bind) -> bool:
    return bind.dialect.name == "postgresql"


def insert(bind: Bind) -> InsertClass:
    """The dialect's INSERT construct, the one with ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""
    return postgresql.Insert if is_postgres(bind) else sqlite.Insert
