"""New-token allocations per second with several processes sharing one vault (PostgreSQL + Redis).

Each process is its own OS process with its own ``Vault`` and masks texts whose every value is new
(emails, EKS cluster ARNs, IAM role ARNs and S3 URIs, round robin, so four sequences are in use),
for ``--duration`` seconds from a common start instant. ``--per-call`` sets how many new values one
mask call carries (1: a chat message with one new resource; 200: a document), ``--concurrency`` how
many mask calls a process has in flight at once (1: one after the other).

Every new token is a number taken from its type's sequence (a Redis lease refilled from the
database), one GET_OR_CREATE script call, a database insert that commits before the call returns
(so the token survives a Redis restart), and a publish to Redis. After each run the database is
checked: as many rows as tokens the callers received, and no (type, number) twice.

Baselines, measured in the same run with the same processes:
``redis_incr``  one ``INCR`` round trip per number on one Redis key: what handing out numbers one
                by one from Redis costs, with nothing stored.
``sequences``   ``Sequences.next_many(name, per_call)`` in a loop: the vault's numbering alone.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis.asyncio as aioredis
import sqlalchemy as sa

from _common import (
    BenchError,
    Services,
    emit,
    machine,
    note,
    parser,
    percentile,
    recv,
    run_in_step,
    runs_and_overall,
    services,
)
from accord.store.engine import create_engine, read_tx
from accord.vault import Sequences, Vault
from accord.vault._sql import tables as t

TARGET_TOKENS_PER_S = 10_000.0
PATHS = ("vault", "sequences", "redis_incr")


def values(process: int, call: int, count: int) -> list[str]:
    """``count`` originals no other call of any process uses."""
    kinds = (
        lambda tag: f"{tag}@alloc.example.com",
        lambda tag: f"arn:aws:eks:us-east-1:123456789012:cluster/{tag}",
        lambda tag: f"arn:aws:iam::123456789012:role/{tag}",
        lambda tag: f"s3://bucket-{tag}/key",
    )
    return [kinds[i % len(kinds)](f"p{process}-c{call}-v{i}") for i in range(count)]


# ----- worker processes --------------------------------------------------------------------------


def worker(conn: Connection, path: str, index: int, urls: dict[str, str], args: dict[str, Any]) -> None:
    asyncio.run(_work(conn, path, index, urls, args))


async def _work(conn: Connection, path: str, index: int, urls: dict[str, str], args: dict[str, Any]) -> None:
    os.environ["ACCORD_MASTER_KEY"] = urls["key"]
    vault = await Vault.connect(urls["pg"], urls["redis"], sweep=False) if path == "vault" else None
    client = aioredis.Redis.from_url(urls["redis"]) if path == "redis_incr" else None
    seq = await Sequences.connect(urls["pg"], urls["redis"]) if path == "sequences" else None
    per_call: int = args["per_call"]
    calls = 0
    received = 0

    async def one() -> None:
        nonlocal calls, received
        call = calls
        calls += 1
        # (the counter is added to after each await: "received += await ..." would read it before)
        if vault is not None:
            got = len((await vault.mask(" ; ".join(values(index, call, per_call)), scope="bench")).mappings)
        elif seq is not None:
            got = len(await seq.next_many("bench.numbers", per_call))
        else:
            assert client is not None
            for _ in range(per_call):
                await client.incr("bench:numbers")
            got = per_call
        received += got

    try:
        for _ in range(2):  # warm-up: connections, prepared statements, first leases
            await one()
        warm = received
        conn.send("ready")
        start_ns, duration_ns = await recv(conn, 600)
        await asyncio.sleep(max(0, start_ns - time.monotonic_ns()) / 1e9)
        end = start_ns + duration_ns
        latencies: list[int] = []

        async def loop() -> None:
            while (before := time.monotonic_ns()) < end:
                await one()
                latencies.append(time.monotonic_ns() - before)

        cpu = time.process_time()
        await asyncio.gather(*(loop() for _ in range(args["concurrency"])))
        conn.send((latencies, received - warm, time.monotonic_ns(), time.process_time() - cpu))
    finally:
        if vault is not None:
            await vault.aclose()
        if client is not None:
            await client.aclose()
        if seq is not None:
            await seq.aclose()


# ----- one run -----------------------------------------------------------------------------------


async def one_run(path: str, urls: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    settings = {"per_call": args.per_call, "concurrency": args.concurrency}
    run = await run_in_step(
        worker,
        lambda index, pipe: (pipe, path, index, urls, settings),
        args.processes,
        args.duration,
        result_within_s=300,
    )
    results, start_ns = run.results, run.start_ns
    elapsed_s = (max(r[2] for r in results) - start_ns) / 1e9
    tokens = sum(r[1] for r in results)
    return {
        "tokens": tokens,
        "calls": sum(len(r[0]) for r in results),
        "elapsed_s": round(elapsed_s, 3),
        "tokens_per_s": round(tokens / elapsed_s, 1),
        "cpu_s_per_process": [round(r[3], 3) for r in results],
        "latencies_ms": [ns / 1e6 for r in results for ns in r[0]],
    }


async def check_vault(db_url: str, expected: int) -> dict[str, int]:
    """The invariants after a vault run: every token the callers got is one row; no number twice."""
    engine = create_engine(db_url)
    try:
        async with read_tx(engine) as conn:
            rows = (await conn.execute(sa.select(t.mapping.c.type, t.mapping.c.number))).all()
    finally:
        await engine.dispose()
    numbers = {(row.type, row.number) for row in rows}
    if len(numbers) != len(rows):
        raise BenchError("a number was issued twice")
    if len(rows) != expected:
        raise BenchError(f"{len(rows)} mapping rows for {expected} tokens received")
    return {"rows": len(rows)}


async def _reset(db_url: str, redis_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.delete(t.mapping))
    finally:
        await engine.dispose()
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.flushdb()  # the sequences' database high-water marks stay: no number is reused
    finally:
        await client.aclose()


async def main(args: argparse.Namespace) -> None:
    key = os.environ.get("ACCORD_MASTER_KEY") or base64.b64encode(os.urandom(32)).decode()
    os.environ["ACCORD_MASTER_KEY"] = key
    async with services(args) as found:
        urls = {"pg": found.db_url, "redis": found.redis_url, "key": key}
        await (await Vault.connect(found.db_url, found.redis_url, sweep=False)).aclose()  # migrate once
        runs: dict[str, list[dict[str, Any]]] = {path: [] for path in args.paths}
        for run in range(args.runs):
            for path in args.paths:
                await _reset(found.db_url, found.redis_url)
                result = await one_run(path, urls, args)
                if path == "vault":
                    result["check"] = await check_vault(
                        found.db_url, result["tokens"] + 2 * args.per_call * args.processes
                    )
                runs[path].append(result)
                p99 = percentile(result["latencies_ms"], 99)
                note(
                    f"run {run + 1}/{args.runs} {path:>10}: {result['tokens_per_s']:9.1f} tokens/s  "
                    f"call p50 {statistics.median(result['latencies_ms']):.2f} ms p99 {p99:.2f} ms"
                )
        report(args, found, runs)


def report(args: argparse.Namespace, found: Services, runs: dict[str, list[dict[str, Any]]]) -> None:
    results: dict[str, Any] = {}
    lines = []
    for path, path_runs in runs.items():
        rates = [r["tokens_per_s"] for r in path_runs]
        rate = statistics.median(rates)
        latency = runs_and_overall([r["latencies_ms"] for r in path_runs])
        results[path] = {
            "tokens_per_s": {"runs": rates, "median": rate, "min": min(rates), "max": max(rates)},
            "call_latency_ms": latency,
            "runs": [{k: v for k, v in r.items() if k != "latencies_ms"} for r in path_runs],
        }
        verdict = f" (target >= {TARGET_TOKENS_PER_S:g}: {'met' if rate >= TARGET_TOKENS_PER_S else 'MISSED'})"
        lines.append(
            f"{path:>10}: {rate:9.1f} new tokens/s, median of {len(rates)} runs"
            f"{verdict if path == 'vault' else ''}; per call p50 {latency['overall']['median']:.2f} ms "
            f"p99 {latency['overall']['p99']:.2f} ms"
        )
    vault_rate = results["vault"]["tokens_per_s"]["median"] if "vault" in results else None
    emit(
        {
            "benchmark": "vault_alloc",
            "unit": "new tokens per second, all processes together; latency in ms per mask call",
            "machine": machine(found),
            "parameters": {k: v for k, v in vars(args).items() if k not in ("db_url", "redis_url")},
            "results": results,
            "target_tokens_per_s": TARGET_TOKENS_PER_S,
            "target_met": vault_rate is not None and vault_rate >= TARGET_TOKENS_PER_S,
        },
        lines,
    )


def cli() -> argparse.Namespace:
    p = parser(__doc__.splitlines()[0], db_name="accord_bench_vault_alloc")
    p.set_defaults(redis_url="redis://127.0.0.1:6379/14")
    p.add_argument("--processes", type=int, default=4, help="worker processes")
    p.add_argument("--per-call", type=int, default=200, help="new values per mask call")
    p.add_argument("--concurrency", type=int, default=1, help="mask calls in flight per process")
    p.add_argument("--duration", type=float, default=5.0, help="seconds of sustained allocation per run and path")
    p.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS), help="what to measure")
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(cli()))
