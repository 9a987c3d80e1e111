"""Engines from URLs, and the one place where driver errors become accord errors.

``translate_errors`` is the boundary: connection failures become StoreUnavailableError, the put
function's compare-and-set signal becomes ConflictError, and a deadlock victim is recognised here
(``retry_deadlocks``). No other module matches driver error codes or message text.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from accord.core import environ
from accord.core.errors import AccordError, ConflictError, StoreUnavailableError
from accord.store.dialect import (
    ASYNC_DRIVERS,
    WRITE_OPTION,
    async_driver,
    engine_for,
    is_sqlite,
    sqlite_hop,
    sqlite_writer_turn,
)

__all__ = [
    "DEFAULT_DB_FILE",
    "create_engine",
    "default_db_url",
    "is_sqlite",
    "normalize_url",
    "read_tx",
    "redact",
    "resolve_db_url",
    "retry_deadlocks",
    "retry_unsent",
    "run_read",
    "run_write",
    "sqlite_file",
    "translate_errors",
    "write_tx",
]

T = TypeVar("T")
log = logging.getLogger("accord.store")
DEFAULT_DB_FILE = "accord.db"
DEADLOCK_ATTEMPTS = 5
_PG_DEADLOCK = "40P01"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # sqlite:, postgresql+asyncpg:, ...
_CONNECTION_MARKERS = ("connection", "terminat", "shutdown", "the database system is", "closed")
# The server ended the session (pg_terminate_backend, a shutdown, a restart).
_PG_SESSION_ENDED = frozenset({"57P01", "57P02", "57P03"})


def default_db_url() -> str:
    """The embedded default: a SQLite file in the working directory."""
    return f"sqlite+aiosqlite:///{Path.cwd() / DEFAULT_DB_FILE}"


def resolve_db_url(url: str | None) -> str:
    """An explicit URL, else ``ACCORD_DB_URL``, else the embedded default.

    A plain file path (``/tmp/x.db``, ``./x.db``, ``~/x.db``: no ``scheme:`` in front) is a SQLite file,
    made absolute against the working directory, because that is what a person typing a path means.
    """
    chosen = url or environ.current().db_url or default_db_url()
    if _SCHEME.match(chosen):
        return chosen
    return f"sqlite+aiosqlite:///{Path(chosen).expanduser().absolute()}"


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names (absolute), or None for PostgreSQL and in-memory SQLite."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.database.startswith("file:") or parsed.query.get("mode") == "memory":
        return None
    return Path(parsed.database).expanduser().absolute()


def normalize_url(url: str) -> sa.URL:
    """Map the plain ``sqlite://`` and ``postgresql://`` forms to the async drivers."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise AccordError(f"not a database URL: {redact(url)!r}") from exc
    driver = async_driver(parsed.drivername)
    if driver not in ASYNC_DRIVERS:
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


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url``, tuned for the store (see ``dialect.engine_for``)."""
    return engine_for(normalize_url(url))


@contextlib.asynccontextmanager
async def write_tx(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A write transaction: IMMEDIATE on SQLite (after this engine's turn among the file's writers)."""
    with translate_errors(engine):
        async with sqlite_writer_turn(engine), engine.connect() as conn:
            conn = await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                yield conn


async def run_write(engine: AsyncEngine, body: Callable[[sa.Connection], T]) -> T:
    """``body`` in one write transaction; on a SQLite file in one thread hop that takes and gives back the file lock.

    Elsewhere (PostgreSQL, in-memory SQLite) it runs in ``write_tx`` through ``run_sync``: the same statements.
    """
    return await _run(engine, body, write=True)


async def run_read(engine: AsyncEngine, body: Callable[[sa.Connection], T]) -> T:
    """``body`` in one read transaction (one snapshot); on a SQLite file in one thread hop."""
    return await _run(engine, body, write=False)


async def _run(engine: AsyncEngine, body: Callable[[sa.Connection], T], *, write: bool) -> T:
    hop = sqlite_hop(engine)
    if hop is None:
        async with (write_tx if write else read_tx)(engine) as conn:
            return await conn.run_sync(body)
    with translate_errors(engine):
        return await (hop.write if write else hop.read)(body)


async def retry_unsent(operation: Callable[[], Awaitable[T]], *, committing: Callable[[], bool]) -> T:
    """Run a write transaction; run it once more if its connection was lost before the COMMIT went out.

    That replaces a ping on every checkout. ``committing()`` tells whether the failed attempt had
    reached its COMMIT: a connection lost before it leaves the server to roll the transaction back,
    so the rerun writes exactly once; one lost during the COMMIT may have committed, and its
    StoreUnavailableError reaches the caller (as does any failure of the second attempt).
    """
    try:
        return await operation()
    except StoreUnavailableError as exc:
        if committing() or not _connection_lost(exc.__cause__):
            raise
        log.debug("connection lost before the commit, retrying once: %s", exc.detail)
    return await operation()


def _connection_lost(exc: BaseException | None) -> bool:
    """A dead connection (the server ended the session, the socket closed), not a timeout or a refusal."""
    if not isinstance(exc, sa.exc.DBAPIError) or exc.orig is None:
        return False
    return exc.connection_invalidated or _sqlstate(exc) in _PG_SESSION_ENDED or _is_connection_error(exc)


@contextlib.asynccontextmanager
async def read_tx(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A read-only transaction (one consistent snapshot), with driver errors translated."""
    with translate_errors(engine):
        async with engine.connect() as conn, conn.begin():
            yield conn


@contextlib.contextmanager
def translate_errors(engine: AsyncEngine) -> Iterator[None]:
    """Turn driver failures into accord errors: unavailability naming the database."""
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


async def retry_deadlocks(operation: Callable[[], Awaitable[T]], *, attempts: int = DEADLOCK_ATTEMPTS) -> T:
    """Rerun an idempotent transaction the database chose as a deadlock victim (at most ``attempts`` times)."""
    for attempt in range(attempts):
        try:
            return await operation()
        except sa.exc.DBAPIError as exc:
            if not is_deadlock(exc) or attempt == attempts - 1:
                raise
            log.debug("deadlock victim, retrying: %s", _first_line(exc))
    raise AssertionError("unreachable")


def is_deadlock(exc: sa.exc.DBAPIError) -> bool:
    """Whether the database aborted this transaction to break a deadlock (safe to rerun when idempotent)."""
    return _sqlstate(exc) == _PG_DEADLOCK


def _sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    cause = exc.orig.__cause__ if exc.orig is not None else None
    return getattr(exc.orig, "sqlstate", None) or getattr(cause, "sqlstate", None)


def conflict_error(key: str, expected: int, actual: int) -> ConflictError:
    what = "create-only write" if expected == 0 else f"write expecting version {expected}"
    return ConflictError(
        f"{what} to {key!r} conflicted: its version is {actual}", key=key, expected=expected, actual=actual
    )


def _is_connection_error(exc: sa.exc.DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(marker in text for marker in _CONNECTION_MARKERS)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]
