"""Shared plumbing for the benchmarks: services, statistics, machine facts and the JSON report.

Every benchmark talks to real servers. By default those are the machine's own PostgreSQL
(127.0.0.1:5432, user postgres) and Redis (127.0.0.1:6379, DB 15); ``--private`` starts throw-away
ones with the test suite's ``tests/harness`` instead. The database named in ``--db-url`` is a
scratch database: it is dropped and created fresh, and dropped again at the end, so its name must
start with ``accord_bench``. The Redis DB in ``--redis-url`` is flushed before and after, so it may
not be DB 0 of a shared server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
SCRATCH_PREFIX = "accord_bench"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
_LOAD_AT_START = [round(x, 2) for x in os.getloadavg()]  # other work on a shared machine shows in the tails


class BenchError(Exception):
    """A benchmark could not be set up; the message says what to change."""


# ----- command line ------------------------------------------------------------------------------


def parser(description: str, *, db_name: str) -> argparse.ArgumentParser:
    """An argparse parser with the options every benchmark shares."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--runs", type=int, default=5, help="independent runs; figures are given per run and pooled")
    p.add_argument(
        "--db-url",
        default=DEFAULT_PG + db_name,
        help="PostgreSQL URL of a scratch database (name must start with accord_bench; dropped and recreated)",
    )
    p.add_argument(
        "--redis-url", default=DEFAULT_REDIS, help="Redis URL; its DB is flushed before and after (not DB 0)"
    )
    p.add_argument(
        "--private",
        action="store_true",
        help="start private redis-server and PostgreSQL processes (tests/harness) instead of the system ones",
    )
    return p


# ----- services ----------------------------------------------------------------------------------


@dataclass
class Services:
    db_url: str
    redis_url: str
    pg_version: str = ""
    redis_version: str = ""
    kind: str = "system"
    workdir: Path = field(default_factory=Path)


@contextlib.asynccontextmanager
async def services(args: argparse.Namespace) -> AsyncIterator[Services]:
    """A fresh scratch database and an empty Redis DB, on the system servers or on private ones."""
    with tempfile.TemporaryDirectory(prefix="accord-bench-") as tmp:
        if args.private:
            async with _private(Path(tmp)) as found:
                yield found
            return
        found = Services(args.db_url, args.redis_url, kind="system", workdir=Path(tmp))
        async with _scratch(found):
            yield found


@contextlib.asynccontextmanager
async def _scratch(found: Services) -> AsyncIterator[None]:
    name = _checked_scratch(found.db_url)
    _checked_redis(found.redis_url, found.kind)
    admin = await asyncpg.connect(_admin_dsn(found.db_url), timeout=5)
    client = aioredis.Redis.from_url(found.redis_url)
    try:
        found.pg_version = str(await admin.fetchval("SHOW server_version"))
        found.redis_version = str((await client.info("server"))["redis_version"])
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        await client.flushdb()
        yield
    finally:
        with contextlib.suppress(Exception):
            await client.flushdb()
        await client.aclose()
        with contextlib.suppress(Exception):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def _private(workdir: Path) -> AsyncIterator[Services]:
    sys.path.insert(0, str(ROOT))
    from tests.harness import PostgresServer, RedisServer  # imported late: only --private needs it

    redis_server = RedisServer(workdir / "redis")
    pg_server = PostgresServer(workdir / "pg")
    try:
        redis_server.start()
        pg_server.init()
        pg_server.start()
        db_url = pg_server.create_database(SCRATCH_PREFIX)
        found = Services(db_url, redis_server.url, kind="private", workdir=workdir)
        async with _scratch(found):
            yield found
    finally:
        pg_server.destroy()
        redis_server.close()


def _checked_scratch(db_url: str) -> str:
    name = make_url(db_url).database or ""
    if not name.startswith(SCRATCH_PREFIX) or not name.replace("_", "").isalnum():
        raise BenchError(f"--db-url must name a scratch database starting with {SCRATCH_PREFIX!r}, not {name!r}")
    return name


def _checked_redis(redis_url: str, kind: str) -> None:
    db = int((redis_url.rsplit("/", 1)[1] or "0") if redis_url.count("/") >= 3 else 0)
    if db == 0 and kind == "system":
        raise BenchError("--redis-url must select a DB other than 0 (it is flushed), e.g. redis://127.0.0.1:6379/15")


def _admin_dsn(db_url: str) -> str:
    return make_url(db_url).set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)


# ----- statistics --------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks, as numpy does."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float], *, digits: int = 3) -> dict[str, float]:
    """n, median, p99 and the spread of one sample."""
    if not values:
        return {"n": 0}
    figures = {
        "median": statistics.median(values),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "mean": statistics.fmean(values),
        "min": min(values),
        "max": max(values),
    }
    return {"n": len(values)} | {k: round(v, digits) for k, v in figures.items()}


def runs_and_overall(per_run: Sequence[Sequence[float]], *, digits: int = 3) -> dict[str, Any]:
    """Per-run summaries, the pooled summary, and the median across runs of each run's median and p99."""
    runs = [summary(sample, digits=digits) for sample in per_run]
    pooled = [v for sample in per_run for v in sample]
    return {
        "runs": runs,
        "overall": summary(pooled, digits=digits),
        "median_of_run_medians": round(statistics.median(r["median"] for r in runs), digits),
        "median_of_run_p99s": round(statistics.median(r["p99"] for r in runs), digits),
    }


# ----- machine and report ------------------------------------------------------------------------


def machine(found: Services | None = None) -> dict[str, Any]:
    """The facts a reader needs to compare figures: cores, CPU, Python, servers, library versions, load."""
    facts: dict[str, Any] = {
        "loadavg_at_start": _LOAD_AT_START,
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in ("accord", "sqlalchemy", "asyncpg", "redis", "hiredis")},
    }
    if found is not None:
        facts |= {"postgresql": found.pg_version, "redis": found.redis_version, "servers": found.kind}
    return facts


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def emit(report: dict[str, Any], lines: Iterable[str]) -> None:
    """The figures as JSON on stdout, a short human summary on stderr."""
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()
    for line in lines:
        print(line, file=sys.stderr)


def note(text: str) -> None:
    """Progress on stderr, so stdout stays pure JSON."""
    print(text, file=sys.stderr, flush=True)


# ----- talking to child processes ----------------------------------------------------------------


async def recv(conn: Connection, within_s: float) -> Any:
    """``conn.recv()`` without blocking the event loop (the pipe's fd wakes the loop)."""
    if not conn.poll():
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        loop.add_reader(conn.fileno(), lambda: ready.done() or ready.set_result(None))
        try:
            async with asyncio.timeout(within_s):
                await ready
        except TimeoutError:
            raise BenchError(f"no message from the child process within {within_s:g}s") from None
        finally:
            loop.remove_reader(conn.fileno())
    return conn.recv()


@dataclass
class StepRun:
    """What :func:`run_in_step` gives back: when the children started, their results, the side task's."""

    start_ns: int
    results: list[Any]
    during: Any = None


async def run_in_step(
    target: Callable[..., None],
    args_of: Callable[[int, Connection], tuple[Any, ...]],
    count: int,
    duration_s: float,
    *,
    what: str = "worker",
    result_within_s: float = 120.0,
    during: Callable[[asyncio.Event], Awaitable[Any]] | None = None,
) -> StepRun:
    """``count`` spawned children that all start at the same instant, and what each sends back.

    Each child gets ``args_of(index, its pipe end)``, sends ``"ready"`` once set up, then receives
    ``(start_ns, duration_ns)`` (0.2 s ahead, so none starts early) and sends one result. ``during``
    runs beside them until the last result is in (its stop event is then set).
    """
    ctx = multiprocessing.get_context("spawn")
    pipes, procs = [], []
    for index in range(count):
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=target, args=args_of(index, theirs))
        proc.start()
        pipes.append(ours)
        procs.append(proc)
    try:
        for pipe in pipes:
            if await recv(pipe, 120) != "ready":
                raise BenchError(f"a {what} did not get ready")
        start_ns = time.monotonic_ns() + 200_000_000
        for pipe in pipes:
            pipe.send((start_ns, int(duration_s * 1e9)))
        stop = asyncio.Event()
        side = asyncio.create_task(during(stop)) if during is not None else None
        results = [await recv(pipe, duration_s + result_within_s) for pipe in pipes]
        stop.set()
        return StepRun(start_ns, results, await side if side is not None else None)
    finally:
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
