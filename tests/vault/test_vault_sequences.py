"""Sequences: numbers never issued twice, with and without Redis, across instances, processes and Redis restarts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from accord.vault import Sequences
from accord.vault.sequences import INSTALL_RANGE, NEXT
from accord.vault.types import InvalidInputError
from tests.harness import RedisServer

WORKER = Path(__file__).with_name("vault_worker.py")


@pytest.fixture(params=["sqlite", "postgres", "sqlite_redis", "postgres_redis"])
def urls(request: pytest.FixtureRequest) -> tuple[str, str]:
    name: str = request.param
    db_url: str = request.getfixturevalue("sqlite_url" if name.startswith("sqlite") else "pg_url")
    return db_url, request.getfixturevalue("redis_url") if name.endswith("redis") else ""


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    return url


async def test_numbers_are_consecutive_per_name(urls: tuple[str, str]) -> None:
    async with await Sequences.connect(*urls, lease=7) as seq:
        assert [await seq.next("orders") for _ in range(20)] == list(range(1, 21))
        assert list(await seq.next_many("orders", 15)) == list(range(21, 36))
        assert await seq.next("invoices") == 1
        assert await seq.reserved("orders") >= 35
        assert await seq.reserved("unknown") == 0


async def test_concurrent_callers_in_two_instances_never_share_a_number(urls: tuple[str, str]) -> None:
    async with await Sequences.connect(*urls, lease=5) as one, await Sequences.connect(*urls, lease=5) as two:
        singles = [seq.next("orders") for _ in range(100) for seq in (one, two)]
        batches = [seq.next_many("orders", 7) for _ in range(10) for seq in (one, two)]
        results = await asyncio.gather(*singles, *batches)
    numbers = [n for r in results for n in ([r] if isinstance(r, int) else list(r))]
    assert len(numbers) == 200 + 140
    assert len(set(numbers)) == len(numbers)


async def test_redis_and_database_paths_mix_safely(pg_url: str, redis_url: str) -> None:
    async with (
        await Sequences.connect(pg_url, redis_url, lease=10) as cached,
        await Sequences.connect(pg_url, "") as direct,
    ):
        results = await asyncio.gather(*[seq.next("orders") for _ in range(80) for seq in (cached, direct)])
    assert len(set(results)) == len(results)
    async with await Sequences.connect(pg_url, "") as direct:
        assert max(results) <= await direct.reserved("orders"), "every number is below the high-water mark"


async def test_redis_restarting_empty_never_reuses_a_number(db_url: str, own_redis: RedisServer) -> None:
    async with await Sequences.connect(db_url, own_redis.url, lease=10) as seq:
        before = [await seq.next("orders") for _ in range(25)]
        own_redis.restart()
        after = [await seq.next("orders") for _ in range(25)]
        assert min(after) > max(before)
        own_redis.kill()
        during = [await seq.next("orders") for _ in range(5)]  # served by the database
        own_redis.start()
        await asyncio.sleep(0.3)  # let the client's pause after the outage run out
        later = [await seq.next("orders") for _ in range(25)]
    numbers = before + after + during + later
    assert len(set(numbers)) == len(numbers)
    assert before == list(range(1, 26))


async def test_stale_ranges_are_refused_and_a_missing_counter_issues_nothing(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        next_script, install = client.register_script(NEXT), client.register_script(INSTALL_RANGE)
        assert await next_script(keys=["accord:seq:t"], args=[1]) == 0, "no range installed: nothing issued"
        assert await install(keys=["accord:seq:t"], args=[100, 200]) == 1
        assert await next_script(keys=["accord:seq:t"], args=[1]) == 101
        assert await install(keys=["accord:seq:t"], args=[0, 50]) == 0, "a range below the current one"
        assert await install(keys=["accord:seq:t"], args=[200, 300]) == 1, "a contiguous range extends"
        assert await next_script(keys=["accord:seq:t"], args=[199]) == 300
        assert await next_script(keys=["accord:seq:t"], args=[1]) == 0, "exhausted: nothing issued"
        assert await install(keys=["accord:seq:t"], args=[400, 500]) == 1, "a later range is jumped to"
        assert await next_script(keys=["accord:seq:t"], args=[1]) == 401
    finally:
        await client.aclose()


@pytest.mark.parametrize(("name", "count"), [("", 1), ("has space", 1), ("a" * 65, 1), ("ok", 0), ("ok", -3)])
async def test_bad_names_and_counts_are_refused(sqlite_url: str, name: str, count: int) -> None:
    async with await Sequences.connect(sqlite_url, "") as seq:
        with pytest.raises(InvalidInputError):
            await seq.next_many(name, count)


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


async def test_four_processes_across_a_redis_restart(
    tmp_path: Path, pg_url: str, own_redis: RedisServer, children: list[subprocess.Popen[bytes]]
) -> None:
    calls = 600
    for index in range(4):
        children.append(_spawn(tmp_path, index, pg_url, own_redis.url, calls))
    async with asyncio.timeout(90):
        while _progress(tmp_path) < 4 * calls // 3:
            assert all(proc.poll() is None for proc in children), "a worker exited early"
            await asyncio.sleep(0.05)
    own_redis.kill()
    await asyncio.sleep(0.3)
    own_redis.start()
    numbers: list[int] = []
    for index, proc in enumerate(children):
        _, stderr = proc.communicate(timeout=90)
        assert proc.returncode == 0, stderr.decode(errors="replace")[-2000:]
        numbers += json.loads((tmp_path / f"out-{index}.json").read_text())["numbers"]
    assert len(numbers) == 4 * (calls // 10 * 14)
    assert len(set(numbers)) == len(numbers), "a number was issued twice"


def _spawn(directory: Path, index: int, db_url: str, redis_url: str, calls: int) -> subprocess.Popen[bytes]:
    config = {
        "mode": "sequences",
        "db_url": db_url,
        "redis_url": redis_url,
        "calls": calls,
        "out": str(directory / f"out-{index}.json"),
        "progress": str(directory / f"progress-{index}"),
    }
    path = directory / f"config-{index}.json"
    path.write_text(json.dumps(config))
    return subprocess.Popen([sys.executable, str(WORKER), str(path)], env=os.environ.copy(), stderr=subprocess.PIPE)


def _progress(directory: Path) -> int:
    total = 0
    for index in range(4):
        with contextlib.suppress(FileNotFoundError, ValueError):
            total += int((directory / f"progress-{index}").read_text() or 0)
    return total
