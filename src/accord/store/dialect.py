"""The one place that knows SQLite and PostgreSQL differ.

Every branch on the SQL dialect lives here, so a caller asks a question ("may this statement run
in autocommit?", "which INSERT has ON CONFLICT?") instead of testing a dialect name; a third
dialect would be one edit in this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import math
import os
import select
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from accord.store.sqlite_hop import SqliteHop

__all__ = [
    "ASYNC_DRIVERS",
    "WRITE_OPTION",
    "Bind",
    "async_driver",
    "db_now",
    "db_now_plus",
    "engine_for",
    "insert",
    "is_postgres",
    "is_sqlite",
    "listen_dsn",
    "lock_out_other_writers",
    "sqlite_hop",
    "sqlite_writer_turn",
    "uses_put_function",
]

InsertClass = type[postgresql.Insert] | type[sqlite.Insert]
WRITE_OPTION = "accord_write"
SQLITE_BUSY_TIMEOUT_S = 30.0
SQLITE_AUTOCHECKPOINT_PAGES = 10_000  # a safety bound only: watchers checkpoint off the write path (bus/local_bus.py)
WRITER_LOCK_SUFFIX = "-writer.lock"
PG_CONNECT_TIMEOUT_S = 5.0
PG_COMMAND_TIMEOUT_S = 15.0
PG_POOL_TIMEOUT_S = 10.0
ASYNC_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
}


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


def async_driver(drivername: str) -> str:
    """The async driver accord uses for a URL's driver name (``sqlite`` -> ``sqlite+aiosqlite``)."""
    return _DRIVERS.get(drivername, drivername)


def uses_put_function(bind: Bind) -> bool:
    """Whether puts go through the server-side ``accord_put_groups`` function (migration 0011).

    On PostgreSQL one statement holds the revision lock for the function and the commit only, not
    across round trips; SQLite has no server round trips to save.
    """
    return is_postgres(bind)


def db_now(bind: Bind) -> sa.ColumnElement[Any]:
    """The database's clock now, as timers store it (``store/timers.py``): never this process's clock.

    PostgreSQL's ``clock_timestamp()`` (not ``now()``, which is frozen at the transaction's start);
    SQLite's millisecond text form, which compares in time order as text.
    """
    if is_postgres(bind):
        return sa.literal_column("clock_timestamp()")
    return sa.literal_column("strftime('%Y-%m-%d %H:%M:%f', 'now')")


def db_now_plus(bind: Bind, seconds: float) -> sa.ColumnElement[Any]:
    """The database's clock ``seconds`` from now (a finite float, rendered as a SQL number literal)."""
    if not math.isfinite(seconds):
        raise ValueError(f"not a finite number of seconds: {seconds!r}")
    amount = repr(float(seconds))
    if is_postgres(bind):
        return sa.literal_column(f"clock_timestamp() + make_interval(secs => {amount})")
    return sa.literal_column(f"strftime('%Y-%m-%d %H:%M:%f', 'now', '{float(seconds):+.6f} seconds')")


def lock_out_other_writers(conn: sa.Connection, lock_id: int) -> None:
    """Serialise this transaction with every other one taking ``lock_id``, until it ends.

    SQLite's write transactions already hold the database's write lock (BEGIN IMMEDIATE); PostgreSQL
    needs a transaction-scoped advisory lock.
    """
    if is_postgres(conn):
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})


def listen_dsn(url: sa.URL) -> str | None:
    """The libpq DSN (with its password) for a LISTEN connection; None for a database without NOTIFY."""
    if not url.drivername.startswith("postgresql"):
        return None
    dsn_url = url.set(drivername="postgresql")
    if "ssl" in url.query and "sslmode" not in url.query:
        # ``?ssl=`` is SQLAlchemy's spelling; asyncpg's DSN parser knows only libpq's ``sslmode`` and would
        # send ``ssl`` to the server as a run-time setting, which the server refuses ("cannot be changed now").
        mode = str(url.query["ssl"]).lower()
        mode = {"true": "require", "false": "disable"}.get(mode, mode)
        dsn_url = dsn_url.difference_update_query(["ssl"]).update_query_dict({"sslmode": mode})
    return dsn_url.render_as_string(hide_password=False)


def _create_private(path: Path) -> None:
    """Create the database file 0600 (it holds sealed secrets and token hashes); SQLite gives -wal and -shm its mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def ssl_args(url: sa.URL | str) -> dict[str, Any]:
    """asyncpg's connect options for TLS: none unless the URL asks (``sslmode`` / ``ssl``), else ``ssl=False``.

    asyncpg's default is libpq's ``prefer``: every connection would first try a TLS handshake the
    user never asked for (a round trip, and a refusal logged by servers that do not offer TLS).
    """
    query = (sa.make_url(url) if isinstance(url, str) else url).query
    return {} if ("sslmode" in query or "ssl" in query) else {"ssl": False}


def _engine_tls(url: sa.URL) -> tuple[sa.URL, dict[str, Any]]:
    """The URL SQLAlchemy's asyncpg dialect accepts, and its TLS connect option.

    That dialect understands ``?ssl=`` but hands ``?sslmode=`` (libpq's spelling, which users copy
    from other tools) to asyncpg as an unknown keyword; it is rewritten as ``ssl`` in the URL, where
    :func:`listen_dsn` finds it again for the bus's own connections.
    """
    if "sslmode" not in url.query:
        return url, ssl_args(url)
    mode = url.query["sslmode"]
    as_ssl = url.difference_update_query(["sslmode"]).update_query_dict(
        {"ssl": mode if isinstance(mode, str) else mode[-1]}
    )
    return as_ssl, {}


def engine_for(url: sa.URL) -> AsyncEngine:
    """An async engine tuned for the store: WAL and immediate write transactions on SQLite, a pool on PostgreSQL."""
    if url.drivername.startswith("sqlite"):
        return _sqlite_engine(url)
    url, tls = _engine_tls(url)
    engine = create_async_engine(
        url,
        pool_size=10,
        max_overflow=10,
        # No pool_pre_ping: it costs round trips on every checkout. A connection the driver already knows
        # is closed is discarded at checkout (below); one that dies unnoticed fails its first statement
        # before sending it, and the store retries such a write once (engine.retry_unsent).
        pool_pre_ping=False,
        pool_recycle=1800,
        pool_timeout=PG_POOL_TIMEOUT_S,
        # A hung server (not a refused connection) must still fail fast as StoreUnavailableError.
        connect_args={"timeout": PG_CONNECT_TIMEOUT_S, "command_timeout": PG_COMMAND_TIMEOUT_S, **tls},
    )

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        raw = getattr(dbapi_connection, "_connection", None)  # the asyncpg connection under SQLAlchemy's adapter
        if raw is not None and (raw.is_closed() or _server_spoke(raw)):
            raise sa.exc.DisconnectionError("pooled connection ended by the server")  # the pool opens a fresh one

    return engine


def _server_spoke(raw: Any) -> bool:
    """Whether an idle pooled connection has bytes (or EOF) waiting: a server only speaks unasked to end the session.

    One poll(2) with no timeout, no round trip: it sees a FATAL message or a closed socket that the event
    loop has not processed yet, which ``is_closed()`` would only report later.
    """
    transport = getattr(raw, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(0))


def _sqlite_engine(url: sa.URL) -> AsyncEngine:
    file_backed = bool(url.database) and url.database != ":memory:" and not str(url.database).startswith("file:")
    if url.database and url.database != ":memory:":
        _create_private(Path(url.database))
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    _tune_sqlite(engine.sync_engine)
    if file_backed and url.query.get("mode") != "memory":
        path = Path(str(url.database)).expanduser().absolute()
        lock_path = path.with_name(path.name + WRITER_LOCK_SUFFIX)
        _writer_queues[engine.sync_engine] = _WriterQueue(lock_path)
        twin = sa.create_engine(url.set(drivername="sqlite+pysqlite"), connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        _tune_sqlite(twin)
        _hops[engine.sync_engine] = SqliteHop(twin, lock_path, WRITE_OPTION)
    return engine


def _tune_sqlite(engine: sa.Engine) -> None:
    """WAL, a busy timeout, checkpoints off the write path, and BEGIN IMMEDIATE for write transactions."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling would defer BEGIN; we issue BEGIN ourselves below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # Writers take the write lock up front so the revision read and bump cannot interleave.
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class _WriterQueue:
    """One engine's place in the queue of writers of a SQLite file: an asyncio lock, then a file lock.

    SQLite's busy handler sleeps 1, 2, 5, 10, ... 100 ms between attempts at the write lock, so a writer
    that lost the race waits long after the lock became free. Writers that queue on ``flock`` are woken
    by the kernel the moment the holder releases it, and then find SQLite's write lock free.
    """

    def __init__(self, lock_path: Path) -> None:
        self.path = lock_path
        self.fd = -1
        self.lock: asyncio.Lock | None = None

    def _open(self) -> int:
        if self.fd < 0:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if self.lock is None:
            self.lock = asyncio.Lock()
        async with self.lock:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                await _flock_in_thread(fd)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)


async def _flock_in_thread(fd: int) -> None:
    """Wait for the file lock in a worker thread; a cancelled waiter gives the lock back once it gets it."""
    waiting = asyncio.get_running_loop().run_in_executor(None, fcntl.flock, fd, fcntl.LOCK_EX)
    try:
        await asyncio.shield(waiting)
    except asyncio.CancelledError:
        waiting.add_done_callback(lambda f: None if f.cancelled() or f.exception() else fcntl.flock(fd, fcntl.LOCK_UN))
        raise


_writer_queues: weakref.WeakKeyDictionary[sa.Engine, _WriterQueue] = weakref.WeakKeyDictionary()
_hops: weakref.WeakKeyDictionary[sa.Engine, SqliteHop] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def sqlite_writer_turn(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold this engine's turn among the writers of its SQLite file (nothing to wait for on PostgreSQL)."""
    queue = _writer_queues.get(engine.sync_engine)
    if queue is None:
        yield
        return
    async with queue.turn():
        yield


def sqlite_hop(engine: AsyncEngine) -> SqliteHop | None:
    """The one-hop transactions of a SQLite file's engine (None on PostgreSQL and in-memory SQLite)."""
    return _hops.get(engine.sync_engine)


async def close_writers(engine: AsyncEngine) -> None:
    """Close the lock files, the writer thread and the synchronous twin of a disposed engine."""
    queue = _writer_queues.get(engine.sync_engine)
    if queue is not None:
        queue.close()  # reopened if the engine is used again
    hop = _hops.get(engine.sync_engine)
    if hop is not None:
        await hop.aclose()  # likewise


# Tables whose rows hold blobs sealed with the master key (stored secrets and vault originals).
_SEALED_PROBES = (
    "SELECT 1 FROM accord_kv_history WHERE secret LIMIT 1",
    "SELECT 1 FROM accord_vault_mapping WHERE original IS NOT NULL LIMIT 1",
)


def sqlite_holds_sealed(url: sa.URL) -> bool:
    """Whether an embedded database file already holds sealed data (read synchronously, read-only, once)."""
    import sqlite3

    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:":
        return False
    if not Path(url.database).exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{url.database}?mode=ro", uri=True, timeout=5)) as conn:
            for query in _SEALED_PROBES:
                try:
                    if conn.execute(query).fetchone() is not None:
                        return True
                except sqlite3.OperationalError:
                    continue  # the table does not exist (yet)
    except sqlite3.Error:
        return False
    return False
