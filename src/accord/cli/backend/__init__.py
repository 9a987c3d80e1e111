"""Where a command's work happens: straight on the database (``direct``), or on a server over HTTP (``http``).

Both backends hand back the same rows (the ones ``ConfigAdmin`` and the /api routes produce), so a
command only renders rows and prints the same thing either way. Each backend is imported only when
chosen: an HTTP command never loads SQLAlchemy, a database command never loads httpx.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from accord.cli.backend.types import MAX_TTL_S, AuditQuery, Backend, Row, Rows, TokenRequest
from accord.core import environ

__all__ = [
    "MAX_TTL_S",
    "AuditQuery",
    "Backend",
    "Row",
    "Rows",
    "TokenRequest",
    "name_database",
    "open_backend",
    "server_address",
]


def server_address() -> str | None:
    return environ.current().addr


@asynccontextmanager
async def open_backend(db_url: str | None, redis_url: str | None, *, read_only: bool = False) -> AsyncIterator[Backend]:
    """The server named by ACCORD_ADDR if set, else the database.

    On the database, a ``read_only`` command refuses a SQLite file that does not exist (it would create
    an empty one), and a command that succeeded names the database it used on stderr (``database: URL``),
    after its output, so stdout stays what scripts parse and an error stays one line.
    """
    backend: Backend
    database = None
    settings = environ.current()
    if settings.addr is not None:
        from accord.cli.backend.http import HttpBackend

        backend = HttpBackend(settings.addr, settings.token)
    else:
        from accord.cli.backend.direct import DirectBackend

        direct = await DirectBackend.open(db_url, redis_url, must_exist=read_only)
        backend, database = direct, direct.database
    try:
        yield backend
    finally:
        await backend.aclose()
    if database is not None:
        name_database(database)


def name_database(url: str) -> None:
    from accord.cli import output

    output.note(f"database: {url}")
