"""A SQLite file's transactions in one thread hop each, on a synchronous twin of the async engine.

Through aiosqlite every statement is a round trip to the driver's thread and back to the event loop.
A write transaction of five statements held the file's write lock across six of them, and on a busy
machine the holder was descheduled between hops while every other writer waited. Here a transaction
body is a plain function of a ``sqlalchemy.Connection``, run whole in one executor call: the writer
thread takes the file lock, runs BEGIN IMMEDIATE, the body and COMMIT, and gives the lock back before
the event loop hears of it. The lock is held only while that thread works.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa

T = TypeVar("T")
Body = Callable[[sa.Connection], T]


class SqliteHop:
    """The one-hop transactions of one SQLite file: a writer thread of its own, reads on the default executor.

    Writes of this process queue in the writer thread's FIFO, so a caller cancelled while queued is not
    written; one already running completes (as a COMMIT already sent would). The thread's lock file
    descriptor is its own, so it also queues in the kernel against this process's other writers.
    """

    def __init__(self, engine: sa.Engine, lock_path: Path, write_option: str) -> None:
        self.engine = engine
        self._lock_path = lock_path
        self._write_option = write_option
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        self._fd = -1

    async def write(self, body: Body[T]) -> T:
        if self._writer is None:
            self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="accord-sqlite-writer")
        return await asyncio.get_running_loop().run_in_executor(self._writer, self._write, body)

    async def read(self, body: Body[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, self._read, body)

    def _write(self, body: Body[T]) -> T:
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{self._write_option: True})
            if self._fd < 0:
                self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                with conn.begin():
                    return body(conn)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _read(self, body: Body[T]) -> T:
        with self.engine.connect() as conn, conn.begin():
            return body(conn)

    async def aclose(self) -> None:
        """Let a write in flight finish, then close the thread, the lock file and the connections."""
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, writer.shutdown)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.engine.dispose()
