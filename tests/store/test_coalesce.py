"""Concurrent writes of one process share a transaction on PostgreSQL, and each caller keeps its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from accord.core.errors import ConflictError, StoreUnavailableError
from accord.store.coalesce import Coalescer, Outcome
from accord.store.kv import SqlKVStore
from accord.store.types import PutItem
from tests.config.procs_worker import eventually
from tests.harness import PostgresDatabase

CALLERS = 40


def _items(caller: int, round_: int, *, expect: int | None = None) -> list[PutItem]:
    return [
        PutItem(f"c/{caller}/a", f"{round_}".encode(), expect_version=expect),
        PutItem(f"c/{caller}/b", f"{round_}".encode()),
    ]


async def test_concurrent_callers_share_statements_and_each_gets_consecutive_revisions(pg_url: str) -> None:
    async with await SqlKVStore.from_url(pg_url) as store:
        start = await store.current_revision()
        results = await asyncio.gather(
            *(store.put_many(_items(caller, 0), actor=f"u{caller}") for caller in range(CALLERS))
        )
        assert store._put_coalescer.batches > 0, "40 callers at once were written one statement each"
        revisions: list[int] = []
        for caller, changes in enumerate(results):
            assert [c.key for c in changes] == [f"c/{caller}/a", f"c/{caller}/b"]
            assert changes[1].revision == changes[0].revision + 1, "one caller's puts are not adjacent"
            assert {c.actor for c in changes} == {f"u{caller}"}, "a caller's actor was mixed with another's"
            revisions += [c.revision for c in changes]
        assert sorted(revisions) == list(range(start + 1, start + 2 * CALLERS + 1)), "revisions have gaps or repeats"
        assert await store.current_revision() == start + 2 * CALLERS
        for caller in range(CALLERS):
            (entry,) = await store.history(f"c/{caller}/a")
            assert (entry.version, entry.actor) == (1, f"u{caller}")
        second = await asyncio.gather(*(store.put_many(_items(caller, 1)) for caller in range(CALLERS)))
        assert all(changes[0].version == 2 for changes in second), "a second round did not see the first's versions"


async def test_one_callers_compare_and_set_miss_fails_only_that_caller_and_spends_no_revision(pg_url: str) -> None:
    async with await SqlKVStore.from_url(pg_url) as store:
        await asyncio.gather(*(store.put_many(_items(caller, 0)) for caller in range(CALLERS)))
        start = await store.current_revision()
        losers = {3, 17, 38}
        calls = [store.put_many(_items(caller, 1, expect=5 if caller in losers else 1)) for caller in range(CALLERS)]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        for caller, outcome in enumerate(outcomes):
            if caller in losers:
                assert isinstance(outcome, ConflictError), f"caller {caller}: {outcome!r}"
                assert f"c/{caller}/a" in str(outcome)
                entry = await store.get(f"c/{caller}/b")
                assert entry is not None and entry.version == 1, "the missed caller's other put was written"
            else:
                assert isinstance(outcome, list) and outcome[0].version == 2, f"caller {caller}: {outcome!r}"
        winners = CALLERS - len(losers)
        assert await store.current_revision() == start + 2 * winners, "a missed caller spent revisions"
        revisions = sorted(c.revision for outcome in outcomes if isinstance(outcome, list) for c in outcome)
        assert revisions == list(range(start + 1, start + 2 * winners + 1)), "the batch left a revision gap"


async def test_a_database_killed_under_a_batch_fails_its_callers_and_leaves_every_group_whole_or_absent(
    own_pg: PostgresDatabase,
) -> None:
    store = await SqlKVStore.from_url(own_pg.url)
    try:
        committed: dict[int, int] = {}  # caller -> last round whose write returned
        failures: list[BaseException] = []

        async def caller(n: int) -> None:
            for round_ in range(1, 10_000):
                try:
                    await store.put_many(_items(n, round_))
                except StoreUnavailableError as exc:
                    failures.append(exc)
                    return
                committed[n] = round_

        tasks = [asyncio.create_task(caller(n)) for n in range(CALLERS)]
        # batches are in flight when the server dies
        await eventually(lambda: store._put_coalescer.batches >= 20, "the callers' writes to coalesce")
        own_pg.server.kill()
        done, pending = await asyncio.wait(tasks, timeout=60)
        assert not pending, "a caller still waits on a dead database"
        for task in done:
            assert task.exception() is None, (
                f"a caller failed with something other than StoreUnavailableError: {task.exception()!r}"
            )
        assert len(failures) == CALLERS, "every caller was told the database is unavailable"
        assert all("database" in exc.detail for exc in failures if isinstance(exc, StoreUnavailableError))
    finally:
        await store.aclose()

    own_pg.server.start()
    async with await SqlKVStore.from_url(own_pg.url) as store:
        for n in range(CALLERS):
            a, b = await store.history(f"c/{n}/a"), await store.history(f"c/{n}/b")
            assert [e.value for e in a] == [e.value for e in b], f"caller {n}'s group was half-written"
            assert [e.revision + 1 for e in a] == [e.revision for e in b], f"caller {n}'s puts were split"
            assert len(a) >= committed.get(n, 0), f"caller {n} was told a write committed that is not stored"
        revisions = [c.revision for c in await store.changes_since(0)]
        assert revisions == list(range(1, len(revisions) + 1)), "the history has a gap after the crash"


async def test_a_caller_cancelled_while_queued_is_not_written_and_the_rest_are() -> None:
    written: list[list[str]] = []
    release = asyncio.Event()

    async def run(requests: Sequence[str]) -> Sequence[Outcome[str]]:
        written.append(list(requests))
        if len(written) == 1:
            await release.wait()  # the leader's write is in flight while the others queue
        return [f"done {r}" if r != "bad" else ValueError("bad request") for r in requests]

    coalescer: Coalescer[str, str] = Coalescer(run, len, max_requests=2)
    leader = asyncio.create_task(coalescer.submit("first"))
    await asyncio.sleep(0)
    queued = {name: asyncio.create_task(coalescer.submit(name)) for name in ("x", "gone", "bad", "y")}
    await asyncio.sleep(0)
    queued["gone"].cancel()
    release.set()
    assert await leader == "done first"
    assert await queued["x"] == "done x" and await queued["y"] == "done y"
    with pytest.raises(ValueError, match="bad request"):
        await queued["bad"]
    await coalescer.aclose()
    assert written == [["first"], ["x"], ["bad", "y"]], "a cancelled caller was written, or batches broke their bound"
    assert coalescer.batches == 1
    assert await coalescer.submit("after") == "done after", "the coalescer did not return to its idle path"
