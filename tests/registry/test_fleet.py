"""The fleet view against real processes: instances announce, report what they applied, and
``wait_applied`` names one stopped with SIGSTOP (docs/fleet.md). On SQLite, and on PostgreSQL + Redis
where the instances hear changes over the bus and report to the shared database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import accord
from accord.core.errors import NotAppliedError
from accord.registry.fleet import list_instances, wait_applied
from accord.store.instances import instance_store
from tests.harness import child_env
from tests.harness.backends import backend_for
from tests.registry.fleet_worker import Knobs

WORKER = Path(__file__).with_name("fleet_worker.py")


class Worker:
    def __init__(self, db_url: str, env: dict[str, str] | None = None, redis_url: str = "") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), db_url, redis_url],
            stdout=subprocess.PIPE,
            text=True,
            env=child_env({"PYTHONPATH": str(Path(__file__).parents[2]), **(env or {})}),
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().split()
        assert first[:1] == ["ready"], first
        self.id = first[1]

    def line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    made: list[Worker] = []
    yield made
    for w in made:
        w.stop()


@pytest.mark.parametrize("name", ["sqlite", "postgres_redis"])
async def test_instances_announce_report_and_wait_applied_names_a_stopped_one(
    request: pytest.FixtureRequest, name: str, workers: list[Worker]
) -> None:
    backend = backend_for(request, name)
    async with await accord.connect(backend.db_url, backend.redis_url, groups=[Knobs], watch=False) as admin:
        assert admin.announcer is None  # short-lived (watch=False) processes do not announce
        store = instance_store(admin.store)
        workers.extend([Worker(backend.db_url, redis_url=backend.redis_url) for _ in range(2)])
        ids = {w.id for w in workers}
        rows = await list_instances(store, await admin.store.current_revision())
        assert {v.row.id for v in rows} == ids
        assert {v.row.pid for v in rows} == {w.proc.pid for w in workers}
        assert all(v.row.service == "fleet_worker.py" and not v.stale for v in rows)

        before = await admin.store.current_revision()
        await admin.set("knobs.level", 1)
        revision = await admin.store.current_revision()
        assert revision == before + 1  # reports and heartbeats never make revisions
        assert await wait_applied(store, revision, 30) == []

        stalled = workers[1]
        os.kill(stalled.proc.pid, signal.SIGSTOP)
        await admin.set("knobs.level", 2)
        revision = await admin.store.current_revision()
        with pytest.raises(NotAppliedError) as failed:
            await wait_applied(store, revision, 3)
        assert stalled.id in failed.value.detail
        assert f"pid {stalled.proc.pid}" in failed.value.detail
        assert workers[0].id not in failed.value.detail
        lag = {v.row.id: v.lag for v in await list_instances(store, revision)}
        assert lag[stalled.id] >= 1 and lag[workers[0].id] == 0

        os.kill(stalled.proc.pid, signal.SIGCONT)
        assert await wait_applied(store, revision, 30) == []

        workers[0].proc.terminate()
        workers[0].proc.wait(30)

        remaining = {v.row.id for v in await list_instances(store, revision)}
        assert workers[0].id not in remaining  # aclose() on SIGTERM deleted its row
        assert stalled.id in remaining
