"""Sustained write throughput and per-write latency on PostgreSQL with concurrent writer processes.

Each writer is its own OS process with its own store or LiveConfig and writes its own keys, one
write at a time, for ``--duration`` seconds from a common start instant. Paths:
``store`` is ``SqlKVStore.put`` alone (the transaction); ``live_pg`` is ``LiveConfig.set`` on
PostgreSQL only (validate + transaction + NOTIFY); ``live_redis`` is ``LiveConfig.set`` on
PostgreSQL + Redis (validate + transaction + Redis cache update + PUBLISH). Every LiveConfig also
listens, so it applies every other writer's changes too, as a service instance would.
``sql_floor`` is the store's transaction shape (bump the revision row, read the key, upsert it,
append history, commit) sent by hand through one bare asyncpg connection: what this locking
protocol costs on this machine with the lightest possible client, for comparison. ``sql_single``
is an experiment, not accord code: the same effect (bump, upsert, history) as one statement in one
round trip, so the revision row is locked only for that statement and the commit flush.
``store_noping`` (not run by default) is ``SqlKVStore.put`` on an engine without ``pool_pre_ping``,
whose ping costs three round trips (BEGIN, ping, ROLLBACK) on every checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import statistics
import sys
import time
import types
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

import accord
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
from accord import Setting, SettingsGroup
from accord.store.engine import normalize_url
from accord.store.kv import SqlKVStore

PATHS = ("store", "live_pg", "live_redis", "sql_floor", "sql_single")
EXPERIMENTS = ("store_noping",)
KEYS_PER_WRITER = 16
MAX_WRITERS = 16
TARGET_WRITES_PER_S = 1500.0
TARGET_P99_MS = 15.0
ETCD_REFERENCE = {"writes_per_s": 2580, "p99_ms": 4, "writers": 4, "note": "quoted as given, not measured here"}


def _group() -> type[SettingsGroup]:
    """One int setting per (writer, key) pair: benchw.w<writer>_<n>."""
    names = [f"w{w}_{k}" for w in range(MAX_WRITERS) for k in range(KEYS_PER_WRITER)]

    def body(ns: dict[str, Any]) -> None:
        ns["__annotations__"] = dict.fromkeys(names, int)
        ns.update({name: Setting(0) for name in names})
        ns["__module__"] = __name__

    return types.new_class("BenchWrites", (SettingsGroup,), {"category": "benchw"}, body)


BenchWrites = _group()


# ----- writer processes --------------------------------------------------------------------------


def writer(conn: Connection, path: str, index: int, urls: dict[str, str], warmup: int) -> None:
    """Entry point of one writer process."""
    asyncio.run(_write(conn, path, index, urls, warmup))


class _Target:
    """The thing one writer writes through."""

    def __init__(self, path: str, index: int) -> None:
        self.path, self.index = path, index
        self.store: SqlKVStore | None = None
        self.cfg: accord.LiveConfig | None = None
        self.raw: Any = None

    async def open(self, urls: dict[str, str]) -> None:
        if self.path in ("sql_floor", "sql_single"):
            dsn = make_url(urls["pg"]).set(drivername="postgresql").render_as_string(hide_password=False)
            self.raw = await asyncpg.connect(dsn)
        elif self.path == "store":
            self.store = await SqlKVStore.from_url(urls["pg"], migrate=False)
        elif self.path == "store_noping":
            engine = create_async_engine(normalize_url(urls["pg"]), pool_size=10, max_overflow=10, pool_pre_ping=False)
            self.store = SqlKVStore(engine)
        else:
            redis = urls["redis"] if self.path == "live_redis" else ""
            self.cfg = await accord.connect(urls["pg"], redis, groups=[BenchWrites], use_env=False)

    async def write(self, n: int) -> None:
        slot = n % KEYS_PER_WRITER
        if self.raw is not None:
            put = _single_put if self.path == "sql_single" else _floor_put
            await put(self.raw, f"bench/w{self.index}/k{slot}", str(n).encode())
        elif self.store is not None:
            await self.store.put(f"bench/w{self.index}/k{slot}", str(n).encode(), actor="bench")
        else:
            assert self.cfg is not None
            await self.cfg.set(f"benchw.w{self.index}_{slot}", n)

    async def aclose(self) -> None:
        if self.raw is not None:
            await self.raw.close()
        if self.store is not None:
            await self.store.aclose()
        if self.cfg is not None:
            await self.cfg.aclose()


_BUMP = "UPDATE accord_meta SET value = value + 1 WHERE name = 'revision' RETURNING value"
_CURRENT = "SELECT version FROM accord_kv WHERE key = $1"
_UPSERT = (
    "INSERT INTO accord_kv (key, value, create_revision, mod_revision, version, secret, updated_at, updated_by) "
    "VALUES ($1, $2, $3, $3, $4, false, $5, 'bench') ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
    "mod_revision = excluded.mod_revision, version = excluded.version, updated_at = excluded.updated_at"
)
_HISTORY = (
    "INSERT INTO accord_kv_history (revision, key, op, value, version, secret, actor, at) "
    "VALUES ($1, $2, 'put', $3, $4, false, 'bench', $5)"
)


async def _floor_put(conn: Any, key: str, value: bytes) -> None:
    """The same statements, in the same order, as SqlKVStore.put, with no layer in between."""
    async with conn.transaction():
        revision = await conn.fetchval(_BUMP)
        version = (await conn.fetchval(_CURRENT, key) or 0) + 1
        now = datetime.now(UTC)
        await conn.execute(_UPSERT, key, value, revision, version, now)
        await conn.execute(_HISTORY, revision, key, value, version, now)


_SINGLE = """
WITH rev AS (
  UPDATE accord_meta SET value = value + 1 WHERE name = 'revision' RETURNING value
), up AS (
  INSERT INTO accord_kv (key, value, create_revision, mod_revision, version, secret, updated_at, updated_by)
  SELECT $1, $2, rev.value, rev.value, 1, false, $3, 'bench' FROM rev
  ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision,
    version = accord_kv.version + 1, updated_at = excluded.updated_at
  RETURNING version, mod_revision
)
INSERT INTO accord_kv_history (revision, key, op, value, version, secret, actor, at)
SELECT up.mod_revision, $1, 'put', $2, up.version, false, 'bench', $3 FROM up
RETURNING revision
"""


async def _single_put(conn: Any, key: str, value: bytes) -> None:
    """One statement, one round trip, implicit transaction."""
    await conn.fetchval(_SINGLE, key, value, datetime.now(UTC))


async def _write(conn: Connection, path: str, index: int, urls: dict[str, str], warmup: int) -> None:
    target = _Target(path, index)
    await target.open(urls)
    try:
        for n in range(warmup):
            await target.write(n)
        conn.send("ready")
        start_ns, duration_ns = await recv(conn, 600)
        await asyncio.sleep(max(0, start_ns - time.monotonic_ns()) / 1e9)
        latencies, end = [], start_ns + duration_ns
        n = warmup
        while (before := time.monotonic_ns()) < end:
            await target.write(n)
            latencies.append(time.monotonic_ns() - before)
            n += 1
        conn.send((latencies, time.monotonic_ns()))
    finally:
        await target.aclose()


# ----- one run -----------------------------------------------------------------------------------


async def one_run(path: str, urls: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    run = await run_in_step(
        writer,
        lambda index, pipe: (pipe, path, index, urls, args.warmup),
        args.writers,
        args.duration,
        what="writer",
        during=(lambda stop: _sample_waits(urls["pg"], stop)) if args.sample_waits else None,
    )
    results, start_ns, waits = run.results, run.start_ns, run.during
    latencies_ms = [ns / 1e6 for lat, _ in results for ns in lat]
    elapsed_s = (max(end for _, end in results) - start_ns) / 1e9
    return {
        "writes": len(latencies_ms),
        "elapsed_s": round(elapsed_s, 3),
        "writes_per_s": round(len(latencies_ms) / elapsed_s, 1),
        "per_writer": [len(lat) for lat, _ in results],
        "latencies_ms": latencies_ms,
    } | ({"pg_backends_by_wait": waits} if waits is not None else {})


_WAITS = """
SELECT state, coalesce(wait_event_type, 'CPU') AS kind, coalesce(wait_event, '') AS event,
       split_part(ltrim(query), ' ', 1) || ' ' || split_part(ltrim(query), ' ', 2) AS statement
FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND state <> 'idle'
"""


async def _sample_waits(db_url: str, stop: asyncio.Event) -> dict[str, float]:
    """What the writers' backends are doing, sampled every 10 ms: average number of backends per state.

    "in transaction, waiting for the client after X" is a backend whose client has not sent the next
    statement yet; if it holds the revision row lock, everyone else waits on the client's process.
    """
    conn = await asyncpg.connect(make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False))
    counts: collections.Counter[str] = collections.Counter()
    samples = 0
    try:
        while not stop.is_set():
            for row in await conn.fetch(_WAITS):
                if row["state"] == "idle in transaction":
                    counts[f"in transaction, waiting for the client after {row['statement']}"] += 1
                else:
                    counts[f"{row['state']}: {row['kind']} {row['event']}".strip()] += 1
            samples += 1
            await asyncio.sleep(0.01)
    finally:
        await conn.close()
    return {state: round(n / max(samples, 1), 3) for state, n in counts.most_common(12)}


async def _register_schema(urls: dict[str, str]) -> None:
    """Migrate and register the settings once, so the writers' start-ups do not race on it."""
    cfg = await accord.connect(urls["pg"], "", groups=[BenchWrites], use_env=False, watch=False)
    await cfg.aclose()


async def _async_commit(db_url: str) -> None:
    """An experiment, not a recommendation: commits stop waiting for the WAL flush in this database."""
    url = make_url(db_url)
    conn = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await conn.execute(f'ALTER DATABASE "{url.database}" SET synchronous_commit TO off')
    finally:
        await conn.close()


# ----- the benchmark -----------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    if not 1 <= args.writers <= MAX_WRITERS:
        raise BenchError(f"--writers must be between 1 and {MAX_WRITERS}")
    async with services(args) as found:
        urls = {"pg": found.db_url, "redis": found.redis_url}
        if args.async_commit:
            await _async_commit(found.db_url)
        await _register_schema(urls)
        runs: dict[str, list[dict[str, Any]]] = {path: [] for path in args.paths}
        for run in range(args.runs):
            for path in args.paths:
                result = await one_run(path, urls, args)
                runs[path].append(result)
                p99 = percentile(result["latencies_ms"], 99)
                note(f"run {run + 1}/{args.runs} {path:>10}: {result['writes_per_s']:8.1f} writes/s  p99 {p99:.2f} ms")
        report(args, found, runs)


def report(args: argparse.Namespace, found: Services, runs: dict[str, list[dict[str, Any]]]) -> None:
    results: dict[str, Any] = {}
    lines = []
    for path, path_runs in runs.items():
        latency = runs_and_overall([r["latencies_ms"] for r in path_runs], digits=3)
        rates = [r["writes_per_s"] for r in path_runs]
        p99 = latency["overall"]["p99"]
        rate = statistics.median(rates)
        results[path] = {
            "writes_per_s": {"runs": rates, "median": rate, "min": min(rates), "max": max(rates)},
            "latency_ms": latency,
            "runs": [{k: v for k, v in r.items() if k != "latencies_ms"} for r in path_runs],
            "target_writes_per_s": TARGET_WRITES_PER_S,
            "target_p99_ms": TARGET_P99_MS,
            "target_throughput_met": rate >= TARGET_WRITES_PER_S,
            "target_p99_met": p99 <= TARGET_P99_MS,
        }
        lines.append(
            f"{path:>10}: {rate:8.1f} writes/s (median of {len(rates)} runs, target >= {TARGET_WRITES_PER_S:g}: "
            f"{'met' if rate >= TARGET_WRITES_PER_S else 'MISSED'})  latency p50 {latency['overall']['median']:.2f} ms "
            f"p99 {p99:.2f} ms (target <= {TARGET_P99_MS:g}: {'met' if p99 <= TARGET_P99_MS else 'MISSED'})"
        )
    lines.append(f"etcd reference (quoted, not measured here): {ETCD_REFERENCE}")
    out = {
        "benchmark": "write_throughput",
        "unit": "writes/s; latency in ms per write",
        "machine": machine(found),
        "parameters": {k: v for k, v in vars(args).items() if k not in ("db_url", "redis_url")},
        "results": results,
        "etcd_reference": ETCD_REFERENCE,
    }
    emit(out, lines)


def cli() -> argparse.Namespace:
    p = parser(__doc__.splitlines()[0], db_name="accord_bench_writes")
    p.add_argument("--writers", type=int, default=4, help="concurrent writer processes")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of sustained writing per run and path")
    p.add_argument("--warmup", type=int, default=20, help="unmeasured writes per writer before the start")
    p.add_argument(
        "--paths", nargs="+", choices=PATHS + EXPERIMENTS, default=list(PATHS), help="write paths to measure"
    )
    p.add_argument(
        "--sample-waits",
        action="store_true",
        help="sample pg_stat_activity every 10 ms during each run and report where the backends wait",
    )
    p.add_argument(
        "--async-commit",
        action="store_true",
        help="experiment: synchronous_commit=off on the scratch database, to show what the commit flush costs",
    )
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(cli()))
