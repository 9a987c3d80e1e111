"""Many remote clients on 2 `accord serve` replicas (PostgreSQL + Redis): propagation to the last one.

One command starts everything: a scratch database and Redis DB, two `accord serve` processes on them,
and ``--procs`` worker processes that each open their share of ``--clients`` remote LiveConfigs
(``accord.connect(addr=..., token=...)``, each its own SSE stream, alternating between the servers; on
uvloop by default, as under uvicorn, or ``--loop asyncio``). A
direct LiveConfig on the database then writes ``--writes`` values, one at a time; every client's
callback notes when it saw each one. Figures:

- propagation from the write's commit to the LAST client's callback (p50/p99 per run, and pooled);
- PostgreSQL connections of the scratch database with the servers alone and with every client connected;
- a read (``cfg.get``) from a remote LiveConfig beside the same read from a direct one, in one process,
  as a ratio;
- the CPU time both server processes used during the writes, per change, less their idle rate measured
  just before; the same for the client processes together.

Example: ``python bench/remote_fanout.py --private --clients 1000 --procs 4 --writes 50 --runs 3``
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg

from _common import ROOT, emit, machine, note, parser, recv, runs_and_overall, services

sys.path.insert(0, str(ROOT))
IDLE_S = 10.0


def _groups() -> list[Any]:
    from accord import Setting, SettingsGroup

    class Bench(SettingsGroup, category="bench"):
        value: str = Setting("start")

    return [Bench]


def worker(conn: Connection, addrs: list[str], token: str, count: int, loop: str) -> None:
    if loop == "uvloop":
        import uvloop

        uvloop.run(_worker(conn, addrs, token, count))
    else:
        asyncio.run(_worker(conn, addrs, token, count))


async def _worker(conn: Connection, addrs: list[str], token: str, count: int) -> None:
    import accord

    groups = _groups()
    seen: dict[str, float] = {}
    clients = []
    for i in range(count):
        # announce=False: remote clients now report to the fleet view (one server write per client per change),
        # which is not the fan-out this measures; the figures in docs/BENCHMARKS.md were taken without it
        cfg = await accord.connect(
            addr=addrs[i % len(addrs)], token=token, groups=groups, start_timeout=120, announce=False
        )

        def noted(change: Any) -> None:
            seen[str(change.new)] = time.time()  # the latest callback of this process for the value

        cfg.on_change("bench.", noted)
        clients.append(cfg)
    conn.send("ready")
    while (message := await recv(conn, 3600)) != "stop":
        if message == "report":
            conn.send(dict(seen))
            seen.clear()
    for cfg in clients:
        await cfg.aclose()
    conn.send("closed")


async def _pg_connections(db_url: str) -> int:
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    dsn = f"postgresql://{url.username}@{url.host}:{url.port or 5432}/postgres"
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", url.database))
    finally:
        await conn.close()


def _reads(cfg: Any, n: int = 200_000) -> float:
    start = time.perf_counter()
    for _ in range(n):
        cfg.get("bench.value")
    return (time.perf_counter() - start) / n * 1e9


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process so far (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _stream_paths(addrs: list[str]) -> dict[str, float]:
    """Both servers' changes handed to streams so far, by path (/metrics; absent on servers without the count)."""
    import httpx

    totals: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        for addr in addrs:
            text = (await http.get(f"{addr}/metrics")).text
            for path, value in re.findall(r'^accord_remote_stream_changes_total\{path="(\w+)"\} (\S+)$', text, re.M):
                totals[path] = totals.get(path, 0.0) + float(value)
    return totals


def _cpu_of(server_pids: list[int], client_pids: list[int]) -> tuple[float, float]:
    """CPU seconds so far of the servers together and of the client processes together."""
    return sum(_cpu_s(pid) for pid in server_pids), sum(_cpu_s(pid) for pid in client_pids)


async def _one_run(
    args: Any, addrs: list[str], token: str, db_url: str, redis_url: str, server_pids: list[int]
) -> dict[str, Any]:
    import accord

    context = multiprocessing.get_context("spawn")
    base = await _pg_connections(db_url)
    pipes, procs = [], []
    share = [args.clients // args.procs + (1 if i < args.clients % args.procs else 0) for i in range(args.procs)]
    for count in share:
        parent, child = context.Pipe()
        proc = context.Process(target=worker, args=(child, addrs, token, count, args.loop), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    for pipe in pipes:
        assert await recv(pipe, 600) == "ready"
    with_clients = await _pg_connections(db_url)
    lags: list[float] = []
    client_pids = [proc.pid for proc in procs if proc.pid is not None]
    idle_before = _cpu_of(server_pids, client_pids)
    await asyncio.sleep(IDLE_S)  # the background work (checks, tickers, keepalives) without changes
    idle_rate = [
        (after - before) / IDLE_S for before, after in zip(idle_before, _cpu_of(server_pids, client_pids), strict=True)
    ]
    paths_before = await _stream_paths(addrs)
    cpu_before, started = _cpu_of(server_pids, client_pids), time.monotonic()
    async with await accord.connect(db_url, redis_url, groups=_groups(), announce=False) as direct:
        for i in range(args.writes):
            value = f"v{time.time_ns()}-{i}"
            change = await direct.set("bench.value", value)
            committed = change.updated_at.timestamp() if change.updated_at else time.time()
            await asyncio.sleep(args.gap)
            for pipe in pipes:
                pipe.send("report")
            last = 0.0
            for pipe in pipes:
                seen = await recv(pipe, 60)
                if value not in seen:
                    raise RuntimeError(f"a worker missed {value} within {args.gap}s; raise --gap")
                last = max(last, seen[value])
            lags.append((last - committed) * 1000)
        elapsed = time.monotonic() - started
        busy = [
            now - before - rate * elapsed
            for now, before, rate in zip(_cpu_of(server_pids, client_pids), cpu_before, idle_rate, strict=True)
        ]
        servers_ms, clients_ms = (round(b * 1000 / args.writes, 2) for b in busy)
        paths = {path: n - paths_before.get(path, 0) for path, n in (await _stream_paths(addrs)).items()}
        async with await accord.connect(addr=addrs[0], token=token, groups=_groups()) as remote:
            direct_ns, remote_ns = _reads(direct), _reads(remote)
    for pipe in pipes:
        pipe.send("stop")
    for pipe, proc in zip(pipes, procs, strict=True):
        await recv(pipe, 120)
        proc.join(30)
    return {
        "lags_ms": lags,
        "pg_base": base,
        "pg_with_clients": with_clients,
        "read_ns": (direct_ns, remote_ns),
        "servers_cpu_ms_per_change": servers_ms,
        "clients_cpu_ms_per_change": clients_ms,
        "stream_changes_by_path": paths,
    }


async def main() -> None:
    p = parser(__doc__ or "", db_name="accord_bench_remote")
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--writes", type=int, default=50)
    p.add_argument("--gap", type=float, default=1.0, help="seconds between a write and asking for the callbacks")
    p.add_argument(
        "--loop",
        choices=["uvloop", "asyncio"],
        default="uvloop",
        help="the clients' event loop: uvloop is what uvicorn runs a FastAPI app on when it is installed",
    )
    args = p.parse_args()
    from tests.harness.accord_server import AccordServer

    async with services(args) as found:
        servers = [
            AccordServer(
                found.db_url, found.redis_url, found.workdir / f"s{i}", log_level="warning", expect_token=i == 0
            )
            for i in range(2)
        ]
        try:
            for server in servers:
                server.start()
            token = servers[0].token
            assert token is not None
            addrs = [s.addr for s in servers]
            runs = []
            for run in range(args.runs):
                note(f"run {run + 1}/{args.runs}: {args.clients} clients in {args.procs} processes")
                pids = [s.pid for s in servers if s.pid is not None]
                runs.append(await _one_run(args, addrs, token, found.db_url, found.redis_url, pids))
        finally:
            for server in servers:
                server.close()
    lag = runs_and_overall([r["lags_ms"] for r in runs])
    reads = [r["read_ns"] for r in runs]
    ratio = sorted(remote / direct for direct, remote in reads)[len(reads) // 2]
    report = {
        "benchmark": "remote_fanout",
        "clients": args.clients,
        "procs": args.procs,
        "client_loop": args.loop,
        "writes_per_run": args.writes,
        "propagation_to_last_client_ms": lag,
        "pg_connections": [{"servers_only": r["pg_base"], "with_clients": r["pg_with_clients"]} for r in runs],
        "read_ns_direct_remote": reads,
        "read_ratio_remote_over_direct_median": round(ratio, 3),
        "servers_cpu_ms_per_change": [r["servers_cpu_ms_per_change"] for r in runs],
        "clients_cpu_ms_per_change": [r["clients_cpu_ms_per_change"] for r in runs],
        "stream_changes_by_path": [r["stream_changes_by_path"] for r in runs],
        "machine": machine(found),
    }
    connections = [(r["pg_base"], r["pg_with_clients"]) for r in runs]
    emit(
        report,
        [
            f"propagation to the last of {args.clients} clients: median of run p50s "
            f"{lag['median_of_run_medians']} ms, median of run p99s {lag['median_of_run_p99s']} ms",
            f"PostgreSQL connections (servers only, with clients): {connections}",
            f"read: remote/direct = {ratio:.3f}",
            f"both servers' CPU per change (ms, per run): {[r['servers_cpu_ms_per_change'] for r in runs]}",
            f"all clients' CPU per change (ms, per run): {[r['clients_cpu_ms_per_change'] for r in runs]}",
        ],
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    asyncio.run(main())
