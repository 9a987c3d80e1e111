"""Engines from URLs, and the one place where driver errors become accord errors."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from accord.core import environ
from accord.core.errors import AccordError, StoreUnavailableError

DEFAULT_DB_FILE = "accord.db"
SQLITE_BUSY_TIMEOUT_S = 30.0
WRITE_OPTION = "accord_write"
PG_CONNECT_TIMEOUT_S = 5.0
PG_COMMAND_TIMEOUT_S = 15.0
PG_POOL_TIMEOUT_S = 10.0

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
}


def default_db_url() -> str:
    """The embedded default: a SQLite file in the working directory."""
    return f"sqlite+aiosqlite:///{Path.cwd() / DEFAULT_DB_FILE}"


def resolve_db_url(url: str | None) -> str:
    """An explicit URL, else ``ACCORD_DB_URL``, else the embedded default."""
    return url or environ.current().db_url or default_db_url()


def normalize_url(url: str) -> sa.URL:
    """Map the plain ``sqlite://`` and ``postgresql://`` forms to the async drivers."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise AccordError(f"not a database URL: {redact(url)!r}") from exc
    driver = _DRIVERS.get(parsed.drivername, parsed.drivername)
    if driver not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise AccordError(
            f"unsupported database {parsed.drivername!r} in {redact(url)!r}: use sqlite:///path or postgresql://..."
        )
    return parsed.set(drivername=driver)


def redact(url: str | sa.URL) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True) if isinstance(url, str) else url.render_as_string()
    except sa.exc.ArgumentError:
        return "<unparsable url>"


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str) -> AsyncEngine:
    """An async engine tuned for the store: WAL and immediate write transactions on SQLite, a pool on PostgreSQL."""
    parsed = normalize_url(url)
    if parsed.drivername.startswith("sqlite"):
        return _sqlite_engine(parsed)
    return create_async_engine(
        parsed,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_timeout=PG_POOL_TIMEOUT_S,
        # A hung server (not a refused connection) must still fail fast as StoreUnavailableError.
        connect_args={"timeout": PG_CONNECT_TIMEOUT_S, "command_timeout": PG_COMMAND_TIMEOUT_S},
    )


def _sqlite_engine(url: sa.URL) -> AsyncEngine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling would defer BEGIN; we issue BEGIN ourselves below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # Writers take the write lock up front so the revision read and bump cannot interleave.
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextlib.asynccontextmanager
async def write_tx(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A write transaction: IMMEDIATE on SQLite, with driver errors translated."""
    with translate_errors(engine):
        async with engine.connect() as conn:
            conn = await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                yield conn


@contextlib.asynccontextmanager
async def read_tx(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A read-only transaction (one consistent snapshot), with driver errors translated."""
    with translate_errors(engine):
        async with engine.connect() as conn, conn.begin():
            yield conn


@contextlib.contextmanager
def translate_errors(engine: AsyncEngine) -> Iterator[None]:
    """Turn connection-level driver failures into StoreUnavailableError naming the database."""
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError) as exc:
        raise StoreUnavailableError(f"database {redact(engine.url)} is unavailable: {_first_line(exc)}") from exc
    except sa.exc.DBAPIError as exc:
        if exc.connection_invalidated or _is_connection_error(exc):
            raise StoreUnavailableError(f"database {redact(engine.url)} is unavailable: {_first_line(exc)}") from exc
        raise
    except (OSError, TimeoutError) as exc:
        raise StoreUnavailableError(f"database {redact(engine.url)} is unavailable: {exc}") from exc


def _is_connection_error(exc: sa.exc.DBAPIError) -> bool:
    text = str(exc.orig).lower()
    markers = ("connection", "terminat", "shutdown", "the database system is", "closed")
    return any(marker in text for marker in markers)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]
