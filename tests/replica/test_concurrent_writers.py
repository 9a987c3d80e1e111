"""Watchers never miss or reorder a change while 8 processes write concurrently and one is SIGKILLed mid-write.

DESIGN §2's promise, end to end: the sequence of revisions a watching replica applies is gap-free and
is exactly the database's history (revision, key, version), whatever order the bus delivered in and
although one writer died with a write in flight (docs/performance.md has the argument).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from accord.replica.replica import Replica
from accord.store.kv import SqlKVStore
from accord.store.types import Change
from tests.config.procs_worker import eventually
from tests.harness.backends import backend_for
from tests.harness.http_process import child_env

WORKER = Path(__file__).with_name("writer_worker.py")
WRITERS = 8
WRITES_EACH = 60
KILL_AT = 25  # the victim is killed as it starts this write


async def _spawn(db_url: str, redis_url: str, index: int, log: Path) -> asyncio.subprocess.Process:
    park = [str(KILL_AT)] if index == 0 else []  # the victim waits for its SIGKILL after that write
    with log.open("ab") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), db_url, redis_url or "-", str(index), str(WRITES_EACH), *park,
            stdout=asyncio.subprocess.PIPE, stderr=err, env=child_env(),
        )  # fmt: skip


def _text(log: Path) -> str:
    return log.read_text()


async def _until_line(proc: asyncio.subprocess.Process, wanted: str, log: Path) -> None:
    assert proc.stdout is not None
    async with asyncio.timeout(120):
        while True:
            line = (await proc.stdout.readline()).decode().strip()
            if line == wanted:
                return
            if not line:
                raise AssertionError(f"writer ended before {wanted!r} (rc {proc.returncode}); log:\n{_text(log)}")


@pytest.mark.parametrize("backend", ["postgres_redis", "postgres", "sqlite"])
async def test_a_watcher_sees_every_revision_in_order_while_8_writers_run_and_one_is_killed(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    found = backend_for(request, backend)
    async with await SqlKVStore.from_url(found.db_url):
        pass  # migrated once, so the writers' starts do not all race on it
    seen: list[Change] = []
    watcher = await Replica.from_url(
        found.db_url, found.redis_url, prefixes=[""], actor="watcher", check_interval=0.2, poll_interval=0.01
    )
    watcher.on_change(seen.append)
    start = watcher.last_revision
    logs = [tmp_path / f"writer-{i}.log" for i in range(WRITERS)]
    procs = [await _spawn(found.db_url, found.redis_url, i, logs[i]) for i in range(WRITERS)]
    try:
        await _until_line(procs[0], f"writing {KILL_AT}", logs[0])
        procs[0].send_signal(signal.SIGKILL)  # its write number KILL_AT is in flight (or about to be)
        assert await procs[0].wait() == -signal.SIGKILL
        for i in range(1, WRITERS):
            await _until_line(procs[i], "done", logs[i])
            assert await procs[i].wait() == 0, _text(logs[i])
        async with await SqlKVStore.from_url(found.db_url, migrate=False) as store:
            final = await store.current_revision()
            history = await store.changes_since(start)
        await eventually(lambda: watcher.last_revision >= final, "the watcher to reach the last revision")
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await watcher.aclose()

    killed_writes = sum(1 for c in history if c.key.startswith("w/0/"))
    assert killed_writes in (KILL_AT, KILL_AT + 1), (
        "the victim's writes are those it finished, plus at most the one in flight"
    )
    assert len(history) == (WRITERS - 1) * WRITES_EACH + killed_writes
    assert [c.revision for c in history] == list(range(start + 1, final + 1)), "the database's history has a gap"
    assert [c.revision for c in seen] == [c.revision for c in history], "the watcher missed or reordered a revision"
    assert [(c.key, c.version) for c in seen] == [(c.key, c.version) for c in history]
