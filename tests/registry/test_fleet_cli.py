"""`accord instances` and `config set --wait-applied` on the database and over HTTP, against real
instance processes, one of them stopped with SIGSTOP so it cannot apply the change (docs/fleet.md)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator

import pytest

import accord
from tests.cli.cli_helpers import run_cli
from tests.harness import AccordServers
from tests.registry.fleet_worker import Knobs
from tests.registry.test_fleet import Worker


@pytest.fixture
def two_workers(sqlite_url: str) -> Iterator[tuple[Worker, Worker]]:
    made: list[Worker] = []
    try:
        made.append(Worker(sqlite_url, {"ACCORD_SERVICE": "billing"}))
        made.append(Worker(sqlite_url, {"ACCORD_SERVICE": "search"}))
        yield made[0], made[1]
    finally:
        for worker in made:
            worker.stop()


async def test_instances_and_wait_applied_name_the_stalled_instance(
    sqlite_url: str, two_workers: tuple[Worker, Worker], accord_servers: AccordServers
) -> None:
    async with await accord.connect(sqlite_url, "", groups=[Knobs], watch=False):
        pass
    live, stalled = two_workers
    assert live.line() == stalled.line() == "value 0 default"
    server = accord_servers.start(sqlite_url, "", log_level="warning", expect_token=True)
    over = {"addr": server.addr, "token": server.token}

    for where in ({"db": sqlite_url}, over):
        rows = json.loads(run_cli("instances", "--json", **where).stdout)  # type: ignore[arg-type]
        by_id = {row["id"]: row for row in rows}
        assert {live.id, stalled.id} <= set(by_id)
        assert len(rows) == 3  # the two workers and the server's replica; CLI commands never announce
        assert (by_id[live.id]["service"], by_id[live.id]["pid"]) == ("billing", live.proc.pid)
        assert by_id[stalled.id]["service"] == "search" and by_id[stalled.id]["stale"] is False
    table = run_cli("instances", db=sqlite_url).stdout
    assert "billing" in table and "search" in table

    done = run_cli("config", "set", "knobs.level", "3", "--wait-applied", "20s", "--json", db=sqlite_url)
    assert json.loads(done.stdout)["applied_revision"] >= 1
    assert live.line() == "value 3 stored" and stalled.line() == "value 3 stored"

    os.kill(stalled.proc.pid, signal.SIGSTOP)
    for where in ({"db": sqlite_url}, over):
        failed = run_cli("config", "set", "knobs.level", "4", "--wait-applied", "2s", code=8, **where)  # type: ignore[arg-type]
        assert stalled.id in failed.stderr and f"pid {stalled.proc.pid}" in failed.stderr and "search" in failed.stderr
        assert live.id not in failed.stderr and "billing" not in failed.stderr
    lag = {row["id"]: row["lag"] for row in json.loads(run_cli("instances", "--json", db=sqlite_url).stdout)}
    assert lag[stalled.id] >= 2 and lag[live.id] == 0
    os.kill(stalled.proc.pid, signal.SIGCONT)
    run_cli("config", "set", "knobs.level", "5", "--wait-applied", "20s", addr=server.addr, token=server.token)

    token = json.loads(
        run_cli("token", "create", "--name", "reader", "--rule", "config/=read", "--json", db=sqlite_url).stdout
    )["secret"]
    refused = run_cli("instances", addr=server.addr, token=token, code=7)
    assert "fleet/" in refused.stderr
    run_cli("config", "set", "knobs.level", "6", "--wait-applied", "nonsense", db=sqlite_url, code=2)
