"""Many OS processes masking over shared pools at once (PostgreSQL + Redis), also across a Redis restart.

The seed's failure was per-instance numbering: two instances issued the same token for different
resources. Here 8 processes make 5,000 mask calls each; originals are first seen by several
processes at once throughout the run. Afterwards: every original has exactly one token, no token
names two originals, no (type, number) was issued twice, and every masked text unmasked exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from accord.store.engine import create_engine, read_tx
from accord.vault import Vault
from accord.vault._sql import tables as t
from accord.vault.sequences import sequence_name
from accord.vault.tokens import split_token
from tests.harness import RedisServer
from tests.harness.redis_cluster import RedisCluster
from tests.vault.vault_helpers import TEST_KEY

WORKER = Path(__file__).with_name("vault_worker.py")
PROCESSES = 8
CALLS = 5000
POOL = 300
PER_CALL = 2
UNMASK_EVERY = 10  # every masked text is checked at the end through its tokens; round trips are sampled
DEADLINE_S = 280.0
HEAVY = pytest.mark.timeout(300)  # 40,000 calls on a shared 2-core machine; typically 60-120 s
Workers = list[tuple[subprocess.Popen[bytes], Path, Path]]


@pytest.fixture
def workers_started() -> Iterator[Workers]:
    """Collects the worker processes a test starts and never leaves one running."""
    started: Workers = []
    yield started
    for proc, _, _ in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _start_workers(tmp_path: Path, db_url: str, redis_url: str, workers: Workers) -> Workers:
    env = {**os.environ, "ACCORD_MASTER_KEY": TEST_KEY}
    for index in range(PROCESSES):
        out, progress = tmp_path / f"out-{index}.json", tmp_path / f"progress-{index}"
        config = tmp_path / f"config-{index}.json"
        config.write_text(
            json.dumps(
                {
                    "db_url": db_url,
                    "redis_url": redis_url,
                    "seed": index,
                    "calls": CALLS,
                    "pool": POOL,
                    "per_call": PER_CALL,
                    "unmask_every": UNMASK_EVERY,
                    "out": str(out),
                    "progress": str(progress),
                }
            )
        )
        proc = subprocess.Popen([sys.executable, str(WORKER), str(config)], env=env, stderr=subprocess.PIPE)
        workers.append((proc, out, progress))
    return workers


def _progress(workers: Workers) -> int:
    total = 0
    for _, _, progress in workers:
        with contextlib.suppress(FileNotFoundError, ValueError):
            total += int(progress.read_text() or 0)
    return total


def _finish(workers: Workers) -> list[dict[str, Any]]:
    results = []
    deadline = time.monotonic() + DEADLINE_S
    for proc, out, _ in workers:
        _, stderr = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        assert proc.returncode == 0, stderr.decode(errors="replace")[-3000:]
        results.append(json.loads(out.read_text()))
    return results


async def _check(db_url: str, results: list[dict[str, Any]]) -> dict[str, str]:
    """All invariants of the run; returns original -> token."""
    token_of: dict[str, str] = {}
    original_of: dict[str, str] = {}
    for result in results:
        assert result["conflicts"] == [], result["conflicts"]
        assert result["failures"] == [], f"{len(result['failures'])} masked texts did not unmask exactly"
        for original, token in result["pairs"]:
            assert token_of.setdefault(original, token) == token, f"{original!r} got two tokens"
            assert original_of.setdefault(token, original) == original, f"{token} names two originals"
    engine = create_engine(db_url)
    try:
        async with read_tx(engine) as conn:
            rows = (await conn.execute(sa.select(t.mapping.c.token, t.mapping.c.type, t.mapping.c.number))).all()
            reserved = dict((await conn.execute(sa.select(t.sequence.c.type, t.sequence.c.reserved))).all())
    finally:
        await engine.dispose()
    numbers = [(row.type, row.number) for row in rows]
    assert len(numbers) == len(set(numbers)), "a number was issued twice"
    assert {row.token for row in rows} == set(original_of), "the database and the callers disagree on tokens"
    for row in rows:
        assert split_token(row.token) == (row.type, row.number)
        assert row.number <= reserved[sequence_name(row.type)], "a number above the high-water mark"
    return token_of


async def _unmask_all(db_url: str, redis_url: str, token_of: dict[str, str]) -> None:
    async with await Vault.connect(db_url, redis_url, sweep=False) as vault:
        originals = sorted(token_of)
        masked = " | ".join(token_of[original] for original in originals)
        assert await vault.unmask(masked) == " | ".join(originals)


@HEAVY
@pytest.mark.parametrize("redis_fixture", ["redis_url", "cluster_url"])
async def test_eight_processes_share_one_numbering(
    tmp_path: Path,
    pg_url: str,
    master_key: str,
    workers_started: Workers,
    redis_fixture: str,
    request: pytest.FixtureRequest,
) -> None:
    """On one redis-server, then on a 3-node Redis Cluster (every vault script keeps its keys in one slot)."""
    redis_url: str = request.getfixturevalue(redis_fixture)
    started = time.perf_counter()
    results = _finish(_start_workers(tmp_path, pg_url, redis_url, workers_started))
    elapsed = time.perf_counter() - started
    token_of = await _check(pg_url, results)
    assert len(token_of) == POOL + CALLS // 5
    await _unmask_all(pg_url, redis_url, token_of)
    print(f"{PROCESSES} x {CALLS} mask calls on {redis_fixture} in {elapsed:.1f} s; {len(token_of)} originals")


@HEAVY
async def test_redis_restart_mid_run_reuses_no_number(
    tmp_path: Path, pg_url: str, own_redis: RedisServer, master_key: str, workers_started: Workers
) -> None:
    workers = _start_workers(tmp_path, pg_url, own_redis.url, workers_started)
    deadline = time.monotonic() + DEADLINE_S
    while _progress(workers) < PROCESSES * CALLS // 3:
        assert time.monotonic() < deadline, "workers made no progress"
        assert all(proc.poll() is None for proc, _, _ in workers), "a worker exited early"
        await asyncio.sleep(0.05)
    before = await _numbers(pg_url)
    own_redis.kill()
    await asyncio.sleep(0.5)
    own_redis.start()  # empty: counters and cached mappings are gone
    results = _finish(workers)
    token_of = await _check(pg_url, results)
    assert len(token_of) == POOL + CALLS // 5
    after = await _numbers(pg_url)
    assert after - before, "no token was allocated after the restart, so the test proved nothing"
    await _unmask_all(pg_url, own_redis.url, token_of)


@HEAVY
async def test_the_vault_node_of_a_cluster_killed_mid_run_reuses_no_number(
    tmp_path: Path,
    pg_url: str,
    redis_cluster: RedisCluster,
    cluster_url: str,
    master_key: str,
    workers_started: Workers,
) -> None:
    """Killing the node that owns the vault's slot is a Redis restart for the vault: no number issued twice."""
    workers = _start_workers(tmp_path, pg_url, cluster_url, workers_started)
    deadline = time.monotonic() + DEADLINE_S
    while _progress(workers) < PROCESSES * CALLS // 3:
        assert time.monotonic() < deadline, "workers made no progress"
        assert all(proc.poll() is None for proc, _, _ in workers), "a worker exited early"
        await asyncio.sleep(0.05)
    before = await _numbers(pg_url)
    vault_node = _vault_node(redis_cluster)
    redis_cluster.kill(vault_node)
    await asyncio.sleep(0.5)
    redis_cluster.restart(vault_node)  # empty: counters and cached mappings are gone
    results = _finish(workers)
    token_of = await _check(pg_url, results)
    assert len(token_of) == POOL + CALLS // 5
    assert await _numbers(pg_url) - before, "no token was allocated after the restart, so the test proved nothing"
    await _unmask_all(pg_url, cluster_url, token_of)


def _vault_node(cluster: RedisCluster) -> int:
    """The index of the node holding the vault's keys (all in one slot)."""
    holders = set()
    for index, node in enumerate(cluster.nodes):
        with redis.Redis(port=node.port) as client:
            if any(True for _ in client.scan_iter(match="accord:{*:vault}:*", count=1000)):
                holders.add(index)
    assert len(holders) == 1, f"the vault's keys are on nodes {sorted(holders)}"
    return holders.pop()


async def _numbers(db_url: str) -> set[tuple[str, int]]:
    engine = create_engine(db_url)
    try:
        async with read_tx(engine) as conn:
            rows = (await conn.execute(sa.select(t.mapping.c.type, t.mapping.c.number))).all()
    finally:
        await engine.dispose()
    return {(row.type, row.number) for row in rows}
