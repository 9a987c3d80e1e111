"""Child-process entry point for the failure and multi-process tests: `python procs_worker.py MODE ARGS...`.

Each mode prints one line per event on stdout (flushed), so the parent can follow it with a deadline.
A Redis URL of "-" means "no Redis". The kill tests make a child stop inside a transaction at a named
point and say so (``pause_inside``), so the parent's SIGKILL lands exactly there, not after a guessed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

import accord
from accord import ConflictError, Setting, SettingsGroup
from accord.store.kv import SqlKVStore
from accord.store.types import PutItem

BATCH_SIZE = 50
WORKER = Path(__file__).resolve()
# Where a writer stops: after half of a batch's rows (SQLite writes them one by one), or with every row written.
BATCH_POINTS = ("mid_batch", "before_commit")
# Where a first start stops inside its one migration transaction.
MIGRATION_POINTS = ("kv_table_created", "vault_migration_running", "before_commit")
_PAUSE_S = 3600.0


class Knobs(SettingsGroup, category="knobs"):
    level: int = Setting(0)
    name: str = Setting("start")
    counter: int = Setting(0, ge=0)


def batch_key(batch: int, item: int) -> str:
    return f"batch/{batch:06d}/{item:03d}"


def child_env() -> dict[str, str]:
    """The parent's environment without ACCORD_* settings, so only the explicit arguments count."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def command(mode: str, *args: str) -> list[str]:
    return [sys.executable, str(WORKER), mode, *args]


async def eventually(check: Callable[[], Awaitable[bool] | bool], what: str, within: float = 30.0) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after a generous deadline (never a timing assertion)."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what}")
        await asyncio.sleep(0.05)


class Child:
    """A worker process the test follows line by line; ``kill()`` is a real SIGKILL."""

    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path
        self.seen: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, log_path: Path, mode: str, *args: str) -> Child:
        with log_path.open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                *command(mode, *args),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env=child_env(),
            )
        return cls(proc, log_path)

    async def event(self, name: str, within: float = 60.0, **match: object) -> dict[str, Any]:
        """The next line with ``event == name`` (and the given field values); earlier lines are kept in ``seen``."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), max(remaining, 0.01))
            except TimeoutError:
                raise AssertionError(f"no {name} {match} from {self.describe()}; log:\n{self.log()}") from None
            if not line:
                raise AssertionError(f"{self.describe()} exited before {name} {match}; log:\n{self.log()}")
            body = json.loads(line)
            self.seen.append(body)
            if body.get("event") == name and all(body.get(k) == v for k, v in match.items()):
                return body

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")

    async def finish(self, within: float = 30.0) -> int:
        """Close stdin (the signal to stop) and wait for a clean exit."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            code = await asyncio.wait_for(self.proc.wait(), within)
        except TimeoutError:
            await self.kill()
            raise AssertionError(f"{self.describe()} did not exit; log:\n{self.log()}") from None
        await self._drain()
        return code

    async def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        await self._drain()

    async def _drain(self) -> None:
        """Read stdout to its end so the pipe transport closes (an unread pipe would leak it)."""
        if self.proc.stdout is None:
            return
        rest = b""
        with contextlib.suppress(TimeoutError):
            rest = await asyncio.wait_for(self.proc.stdout.read(), 10)
        for line in rest.splitlines():
            with contextlib.suppress(ValueError):
                self.seen.append(json.loads(line))

    def describe(self) -> str:
        return f"worker pid {self.proc.pid} (exit {self.proc.returncode})"

    def log(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        except FileNotFoundError:
            return "<no log>"


def _say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def _connect(db_url: str, redis_url: str) -> accord.LiveConfig:
    return await accord.connect(
        db_url,
        "" if redis_url == "-" else redis_url,
        groups=[Knobs],
        check_interval=0.2,
        poll_interval=0.02,
        start_timeout=20,
        use_env=False,
    )


async def _stdin_line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def watch(db_url: str, redis_url: str) -> None:
    """Print every change of knobs.*; stop when stdin closes."""
    async with await _connect(db_url, redis_url) as cfg:
        cfg.on_change("knobs.", lambda c: _say(event="change", path=c.path, value=c.new, revision=c.revision))
        _say(event="ready", level=cfg.knobs.level, revision=cfg.last_revision)
        await _stdin_line()


async def set_value(db_url: str, redis_url: str, path: str, value: str) -> None:
    async with await _connect(db_url, redis_url) as cfg:
        meta = await cfg.set(path, int(value))
        _say(event="set", path=path, value=meta.value, revision=meta.mod_revision)


async def increment(db_url: str, redis_url: str, times: str) -> None:
    """Compare-and-set increments of knobs.counter; a conflict means someone else won, so re-read and retry."""
    _say(event="ready")
    await _stdin_line()  # every worker connects at once: first-start migrations and schema registration race too
    async with await _connect(db_url, redis_url) as cfg:
        conflicts = 0
        for _ in range(int(times)):
            while True:
                meta = cfg.meta("knobs.counter")
                try:
                    await cfg.set("knobs.counter", int(str(meta.value)) + 1, expect_version=meta.version)
                    break
                except ConflictError:
                    conflicts += 1
                    await cfg.resync()
        _say(event="done", increments=int(times), conflicts=conflicts)


def pause_inside(what: str, **fields: object) -> None:
    """Say where we are, then hold the transaction open until the parent's SIGKILL arrives.

    Called from a SQLAlchemy event, so it runs on the event loop thread, inside the transaction.
    """
    _say(event=what, **fields)
    time.sleep(_PAUSE_S)


async def batches(db_url: str, start: str, stop_at: str = "-1", point: str = "before_commit") -> None:
    """Write batches of BATCH_SIZE keys, one transaction each; print each committed batch number.

    Batch ``stop_at`` stops at ``point`` inside its transaction (see BATCH_POINTS) and waits to be killed.
    """
    store = await SqlKVStore.from_url(db_url)
    current = {"batch": int(start), "rows": 0}
    stop = int(stop_at)

    def row_written(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO ACCORD_KV_HISTORY"):
            current["rows"] += 1
            if point == "mid_batch" and current["batch"] == stop and current["rows"] == BATCH_SIZE // 2:
                pause_inside("in_transaction", batch=stop, rows=current["rows"])

    def committing(_conn: Any) -> None:
        if point == "before_commit" and current["batch"] == stop:
            pause_inside("in_transaction", batch=stop, rows=BATCH_SIZE)

    # Every engine of this process: on a SQLite file the store writes through a synchronous twin (store/sqlite_hop.py).
    event.listen(sa.engine.Engine, "after_cursor_execute", row_written)
    event.listen(sa.engine.Engine, "commit", committing)
    try:
        while True:
            batch = current["batch"]
            current["rows"] = 0
            items = [PutItem(batch_key(batch, i), f"{batch}:{i}".encode()) for i in range(BATCH_SIZE)]
            await store.put_many(items, actor="batch-writer")
            _say(event="committed", batch=batch)
            current["batch"] = batch + 1
    finally:
        await store.aclose()


_KV_TABLE = re.compile(r"^\s*CREATE TABLE accord_kv\s*\(", re.IGNORECASE)
_VAULT_TABLE = re.compile(r"^\s*CREATE TABLE accord_vault_mapping\s*\(", re.IGNORECASE)


async def migrate(db_url: str, point: str = "") -> None:
    """A first start: migrations, schema registration, snapshot.

    With a ``point`` (see MIGRATION_POINTS) it stops there inside the migration transaction and waits to be killed.
    """
    migrating = {"stamped": False}

    def statement_ran(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "accord_alembic_version" in statement and not statement.lstrip().upper().startswith("SELECT"):
            migrating["stamped"] = True
        if point == "kv_table_created" and _KV_TABLE.match(statement):
            pause_inside("in_migration", point=point)
        if point == "vault_migration_running" and _VAULT_TABLE.match(statement):
            pause_inside("in_migration", point=point)

    def committing(_conn: Any) -> None:
        if point == "before_commit" and migrating["stamped"]:
            pause_inside("in_migration", point=point)

    event.listen(sa.engine.Engine, "after_cursor_execute", statement_ran)
    event.listen(sa.engine.Engine, "commit", committing)
    _say(event="migrating")
    async with await _connect(db_url, "-"):
        _say(event="migrated")


MODES = {"watch": watch, "set": set_value, "increment": increment, "batches": batches, "migrate": migrate}

if __name__ == "__main__":
    asyncio.run(MODES[sys.argv[1]](*sys.argv[2:]))
