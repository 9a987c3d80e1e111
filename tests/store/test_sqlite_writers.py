"""Several processes writing one SQLite file through the one-hop transactions (store/sqlite_hop.py).

Every write lands once, revisions are gap-free and each belongs to exactly one acknowledged write, a
compare-and-set miss spends nothing, and a write waits for the file lock whoever holds it.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sys
from pathlib import Path
from typing import TypedDict

from accord.store.dialect import WRITER_LOCK_SUFFIX
from accord.store.engine import sqlite_file
from accord.store.kv import SqlKVStore
from tests.config.procs_worker import eventually
from tests.harness.http_process import child_env

WORKER = Path(__file__).with_name("sqlite_writer_worker.py")
WRITERS = 4
ROUNDS = 30


class WriterReport(TypedDict):
    revisions: list[int]
    missed: int
    counter_misses: int


def _text(log: Path) -> str:
    return log.read_text()


async def _run_writer(db_url: str, index: int, log: Path) -> WriterReport:
    with log.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), db_url, str(index), str(ROUNDS),
            stdout=asyncio.subprocess.PIPE, stderr=err, env=child_env(),
        )  # fmt: skip
    async with asyncio.timeout(180):
        out, _ = await proc.communicate()
    assert proc.returncode == 0, _text(log)
    result: WriterReport = json.loads(out)
    return result


async def test_writer_processes_on_one_file_land_every_write_once_and_spend_nothing_on_a_miss(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with await SqlKVStore.from_url(sqlite_url) as store:
        start = await store.current_revision()
    results = await asyncio.gather(*(_run_writer(sqlite_url, i, tmp_path / f"writer-{i}.log") for i in range(WRITERS)))
    async with await SqlKVStore.from_url(sqlite_url, migrate=False) as store:
        final = await store.current_revision()
        history = await store.changes_since(start)
        counter = await store.get("shared/counter")
        timers = await store.timers().alive("w")

    acknowledged = [rev for result in results for rev in result["revisions"]]
    assert sorted(acknowledged) == list(range(start + 1, final + 1)), "a revision is missing, repeated or unclaimed"
    assert [c.revision for c in history] == list(range(start + 1, final + 1)), "the history has a gap"
    assert [r["missed"] for r in results] == [ROUNDS] * WRITERS, "a compare-and-set that had to miss landed"
    per_writer = ROUNDS * 2 + 2 * (ROUNDS // 3)  # own put, counter increment, and the batches' put and delete
    assert len(history) == WRITERS * per_writer
    assert counter is not None and counter.value == str(WRITERS * ROUNDS).encode()
    assert counter.version == WRITERS * ROUNDS, "an increment was lost or a miss counted as a version"
    assert timers == [f"w{i}" for i in range(WRITERS)], "a write_tx writer of the same processes was lost"


async def test_a_write_waits_for_the_file_lock_and_a_write_cancelled_in_the_queue_is_not_written(
    sqlite_url: str,
) -> None:
    async with await SqlKVStore.from_url(sqlite_url) as store:
        start = await store.current_revision()
        path = sqlite_file(sqlite_url)
        assert path is not None
        fd = os.open(path.with_name(path.name + WRITER_LOCK_SUFFIX), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # another open file description: the writer thread must wait for it
            first = asyncio.create_task(store.put("c/first", b"1"))
            queued = asyncio.create_task(store.put("c/queued", b"2"))
            await asyncio.sleep(0.3)
            assert not first.done() and await store.get("c/first") is None, "a write went past the file lock"
            queued.cancel()
            await asyncio.sleep(0.05)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        written = await first
        assert written.revision == start + 1
        await eventually(lambda: queued.done(), "the cancelled write to finish")
        assert queued.cancelled()
        after = await store.put("c/after", b"3")
        assert after.revision == start + 2, "the cancelled write spent a revision"
        assert await store.get("c/queued") is None
