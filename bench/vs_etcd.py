"""Writes and propagation beside etcd, in the same run: the shapes of issue 13's table.

A private etcd (Debian's etcd-server, ``/usr/bin/etcd``, fsync on: etcd's default, no
``--unsafe-no-fsync``) is started on free loopback ports in a temporary data directory; the
benchmark stops with a message naming the package when it is missing. It is reached over its
HTTP/JSON gateway (``/v3/kv/put``, ``/v3/watch``) with httpx, the same kind of client work a
Python service would do.

Sustained writes: ``--writers`` OS processes (default 4), each setting its own keys one at a
time for ``--duration`` seconds from a common start instant. Paths: ``live_redis``
(``LiveConfig.set`` on PostgreSQL + Redis), ``live_pg`` (PostgreSQL only), ``live_sqlite`` (one
SQLite file), ``etcd`` (a put each). Every LiveConfig also listens, as a service instance would.

Propagation: ``set()`` returning in process A to the ``on_change`` callback running in process B
(Redis bus, and the embedded SQLite mode), beside an etcd put returning in A to the watch event
arriving in B. CLOCK_MONOTONIC is one clock for the machine, so the stamps of A and B compare.

Every figure is also given as a ratio to the same run's etcd figure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx

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
from propagation import Bench
from write_throughput import KEYS_PER_WRITER, MAX_WRITERS, BenchWrites

ETCD_BINARY = "/usr/bin/etcd"
WRITE_PATHS = ("live_redis", "live_pg", "live_sqlite", "etcd")
PROPAGATION_MODES = ("redis", "sqlite", "etcd")
ACK_TIMEOUT_S = 15.0


# ----- etcd --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def private_etcd(workdir: Path) -> Iterator[tuple[str, str]]:
    """A throw-away single-member etcd on free ports; yields (client URL, version)."""
    binary = shutil.which("etcd") or (ETCD_BINARY if Path(ETCD_BINARY).exists() else None)
    if binary is None:
        raise BenchError(f"etcd is not installed ({ETCD_BINARY} missing): apt-get install etcd-server")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    client_port, peer_port = free_port(), free_port()
    base = f"http://127.0.0.1:{client_port}"
    log = (workdir / "etcd.log").open("w")
    proc = subprocess.Popen(
        [binary, "--name", "bench", "--data-dir", str(workdir / "etcd"),
         "--listen-client-urls", base, "--advertise-client-urls", base,
         "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
         "--initial-cluster", f"bench=http://127.0.0.1:{peer_port}"],
        stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None:
                raise BenchError(f"etcd exited with {proc.returncode}; see {workdir / 'etcd.log'}")
            time.sleep(0.05)
        else:
            raise BenchError(f"etcd did not become healthy; see {workdir / 'etcd.log'}")
        yield base, version
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# ----- writer processes --------------------------------------------------------------------------


def writer(conn: Connection, path: str, index: int, urls: dict[str, str], warmup: int) -> None:
    asyncio.run(_write(conn, path, index, urls, warmup))


async def _write(conn: Connection, path: str, index: int, urls: dict[str, str], warmup: int) -> None:
    cfg: accord.LiveConfig | None = None
    client: httpx.AsyncClient | None = None
    if path == "etcd":
        client = httpx.AsyncClient(base_url=urls["etcd"], timeout=30)
    else:
        db = urls["sqlite"] if path == "live_sqlite" else urls["pg"]
        redis = urls["redis"] if path == "live_redis" else ""
        cfg = await accord.connect(db, redis, groups=[BenchWrites], use_env=False)

    async def write(n: int) -> None:
        slot = n % KEYS_PER_WRITER
        if cfg is not None:
            await cfg.set(f"benchw.w{index}_{slot}", n)
        else:
            assert client is not None
            body = {"key": _b64(f"bench/w{index}/k{slot}"), "value": _b64(str(n))}
            (await client.post("/v3/kv/put", json=body)).raise_for_status()

    try:
        for n in range(warmup):
            await write(n)
        conn.send("ready")
        start_ns, duration_ns = await recv(conn, 600)
        await asyncio.sleep(max(0, start_ns - time.monotonic_ns()) / 1e9)
        latencies, end, n = [], start_ns + duration_ns, warmup
        while (before := time.monotonic_ns()) < end:
            await write(n)
            latencies.append(time.monotonic_ns() - before)
            n += 1
        conn.send((latencies, time.monotonic_ns()))
    finally:
        if cfg is not None:
            await cfg.aclose()
        if client is not None:
            await client.aclose()


async def write_run(path: str, urls: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    run = await run_in_step(
        writer, lambda index, pipe: (pipe, path, index, urls, args.warmup), args.writers, args.duration, what="writer"
    )
    results, start_ns = run.results, run.start_ns
    latencies_ms = [ns / 1e6 for lat, _ in results for ns in lat]
    elapsed_s = (max(end for _, end in results) - start_ns) / 1e9
    return {"writes_per_s": round(len(latencies_ms) / elapsed_s, 1), "latencies_ms": latencies_ms}


# ----- propagation -------------------------------------------------------------------------------


def receiver(conn: Connection, mode: str, urls: dict[str, str]) -> None:
    asyncio.run(_receive(conn, mode, urls))


async def _receive(conn: Connection, mode: str, urls: dict[str, str]) -> None:
    def stamp(value: object) -> None:
        conn.send((value, time.monotonic_ns()))

    if mode == "etcd":
        async with httpx.AsyncClient(base_url=urls["etcd"], timeout=None) as client:
            body = {"create_request": {"key": _b64("bench/prop")}}
            async with client.stream("POST", "/v3/watch", json=body) as stream:
                conn.send(("ready", 0))
                async for line in stream.aiter_lines():
                    for event in json.loads(line).get("result", {}).get("events", []) if line else []:
                        value = base64.b64decode(event["kv"]["value"]).decode()
                        if value == "stop":
                            conn.send(("closed", 0))
                            return
                        stamp(value)
        return
    db = urls["sqlite"] if mode == "sqlite" else urls["pg"]
    cfg = await accord.connect(db, urls["redis"] if mode == "redis" else "", groups=[Bench], use_env=False)
    cfg.on_change("bench.value", lambda change: stamp(change.new))
    for _ in range(500):
        if not cfg.status().bus_degraded and not cfg.status().fallback_active:
            break
        await asyncio.sleep(0.01)
    conn.send(("ready", 0))
    await recv(conn, 3600)
    await cfg.aclose()
    conn.send(("closed", 0))


async def propagation_run(
    mode: str, urls: dict[str, str], args: argparse.Namespace, rng: random.Random
) -> tuple[list[float], list[float]]:
    """Milliseconds to the callback (or watch event) in B, from the write returning in A and from its call.

    An etcd watch event can reach B before the put's HTTP response has been parsed in A, so the first
    figure can be negative for etcd; the second cannot.
    """
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(target=receiver, args=(theirs, mode, urls))
    child.start()
    cfg: accord.LiveConfig | None = None
    client: httpx.AsyncClient | None = None
    try:
        while (await recv(ours, 120))[0] != "ready":
            pass
        if mode == "etcd":
            client = httpx.AsyncClient(base_url=urls["etcd"], timeout=30)
        else:
            db = urls["sqlite"] if mode == "sqlite" else urls["pg"]
            cfg = await accord.connect(db, urls["redis"] if mode == "redis" else "", groups=[Bench], use_env=False)

        async def send(value: str) -> None:
            if cfg is not None:
                await cfg.set("bench.value", value)
            else:
                assert client is not None
                body = {"key": _b64("bench/prop"), "value": _b64(value)}
                (await client.post("/v3/kv/put", json=body)).raise_for_status()

        samples, from_call = await _measure(ours, send, args, rng)
        if cfg is not None:
            ours.send("stop")
        else:
            await send("stop")
        with contextlib.suppress(BenchError, EOFError):
            while (await recv(ours, 30))[0] != "closed":
                pass
        return samples, from_call
    finally:
        if cfg is not None:
            await cfg.aclose()
        if client is not None:
            await client.aclose()
        child.join(30)
        if child.is_alive():
            child.kill()


async def _measure(
    ours: Connection, send: Callable[[str], Awaitable[None]], args: argparse.Namespace, rng: random.Random
) -> tuple[list[float], list[float]]:
    samples: list[float] = []
    from_call: list[float] = []
    for i in range(args.warmup + args.changes):
        await asyncio.sleep(rng.uniform(0, args.gap_ms / 1000))
        value = f"v{i}-{rng.random()}"
        called = time.monotonic_ns()
        await send(value)
        returned = time.monotonic_ns()
        while True:
            got, seen = await recv(ours, ACK_TIMEOUT_S)
            if got == value:
                break
        if i >= args.warmup:
            samples.append((seen - returned) / 1e6)
            from_call.append((seen - called) / 1e6)
    return samples, from_call


# ----- the benchmark -----------------------------------------------------------------------------


async def _register(urls: dict[str, str]) -> None:
    """Migrate and register the settings once per database, so writer start-ups do not race on it."""
    for db in (urls["pg"], urls["sqlite"]):
        cfg = await accord.connect(db, "", groups=[BenchWrites, Bench], use_env=False, watch=False)
        await cfg.aclose()


async def main(args: argparse.Namespace) -> None:
    if not 1 <= args.writers <= MAX_WRITERS:
        raise BenchError(f"--writers must be between 1 and {MAX_WRITERS}")
    rng = random.Random(args.seed)
    async with services(args) as found:
        workdir = Path(tempfile.mkdtemp(prefix="accord-bench-vs-etcd-"))
        with contextlib.ExitStack() as cleanup, private_etcd(workdir) as (etcd_url, etcd_version):
            cleanup.callback(shutil.rmtree, workdir, True)
            note(f"private etcd {etcd_version} at {etcd_url}, data in {workdir / 'etcd'} (fsync on)")
            urls = {
                "pg": found.db_url,
                "redis": found.redis_url,
                "sqlite": f"sqlite:///{workdir / 'bench.db'}",
                "etcd": etcd_url,
            }
            await _register(urls)
            writes: dict[str, list[dict[str, Any]]] = {p: [] for p in args.paths}
            propagation: dict[str, dict[str, list[list[float]]]] = {
                m: {"after_return": [], "from_call": []} for m in args.modes
            }
            for run in range(args.runs):
                for path in args.paths:
                    result = await write_run(path, urls, args)
                    writes[path].append(result)
                    p99 = percentile(result["latencies_ms"], 99)
                    note(
                        f"run {run + 1}/{args.runs} writes {path:>11}: {result['writes_per_s']:8.1f}/s p99 {p99:.2f} ms"
                    )
                for mode in args.modes:
                    sample, whole = await propagation_run(mode, urls, args, rng)
                    propagation[mode]["after_return"].append(sample)
                    propagation[mode]["from_call"].append(whole)
                    note(
                        f"run {run + 1}/{args.runs} propagation {mode:>6}: p50 {statistics.median(sample):.3f} ms "
                        f"p99 {percentile(sample, 99):.3f} ms"
                    )
        report(args, found, etcd_version, writes, propagation)


def _ratio(a: float, b: float | None) -> float | None:
    return round(a / b, 3) if b else None


def report(
    args: argparse.Namespace,
    found: Services,
    etcd_version: str,
    writes: dict[str, list[dict[str, Any]]],
    propagation: dict[str, dict[str, list[list[float]]]],
) -> None:
    lines = []
    write_results: dict[str, Any] = {}
    for path, runs in writes.items():
        rates = [r["writes_per_s"] for r in runs]
        latency = runs_and_overall([r["latencies_ms"] for r in runs], digits=3)
        write_results[path] = {
            "writes_per_s": {"runs": rates, "median": statistics.median(rates)},
            "latency_ms": latency,
        }
    etcd_w = write_results.get("etcd")
    for path, fig in write_results.items():
        if etcd_w is not None:
            fig["ratio_to_etcd"] = {
                "writes_per_s": _ratio(fig["writes_per_s"]["median"], etcd_w["writes_per_s"]["median"]),
                "p50": _ratio(
                    fig["latency_ms"]["median_of_run_medians"], etcd_w["latency_ms"]["median_of_run_medians"]
                ),
                "p99": _ratio(fig["latency_ms"]["median_of_run_p99s"], etcd_w["latency_ms"]["median_of_run_p99s"]),
            }
        lines.append(
            f"writes {path:>11}: {fig['writes_per_s']['median']:8.1f}/s  "
            f"p50 {fig['latency_ms']['median_of_run_medians']:.2f} ms  "
            f"p99 {fig['latency_ms']['median_of_run_p99s']:.2f} ms  vs etcd {fig.get('ratio_to_etcd')}"
        )
    prop_results: dict[str, Any] = {
        mode: {name: runs_and_overall(samples, digits=3) for name, samples in by.items()}
        for mode, by in propagation.items()
    }
    etcd_p = prop_results.get("etcd")
    for mode, fig in prop_results.items():
        after, whole = fig["after_return"], fig["from_call"]
        if etcd_p is not None:
            fig["ratio_to_etcd"] = {
                "after_return_p99": _ratio(after["median_of_run_p99s"], etcd_p["after_return"]["median_of_run_p99s"]),
                "from_call_p50": _ratio(whole["median_of_run_medians"], etcd_p["from_call"]["median_of_run_medians"]),
                "from_call_p99": _ratio(whole["median_of_run_p99s"], etcd_p["from_call"]["median_of_run_p99s"]),
            }
        lines.append(
            f"propagation {mode:>6}: after return p50 {after['median_of_run_medians']:.3f} ms "
            f"p99 {after['median_of_run_p99s']:.3f} ms; from call p50 {whole['median_of_run_medians']:.3f} ms "
            f"p99 {whole['median_of_run_p99s']:.3f} ms  vs etcd {fig.get('ratio_to_etcd')}"
        )
    out = {
        "benchmark": "vs_etcd",
        "unit": "writes/s; latencies in ms (median over runs of each run's p50 / p99)",
        "machine": machine(found) | {"etcd": etcd_version},
        "parameters": {k: v for k, v in vars(args).items() if k not in ("db_url", "redis_url")},
        "writes": write_results,
        "propagation": prop_results,
    }
    emit(out, lines)


def cli() -> argparse.Namespace:
    p = parser(__doc__.splitlines()[0] if __doc__ else "", db_name="accord_bench_vs_etcd")
    p.set_defaults(runs=3)
    p.add_argument("--writers", type=int, default=4, help="concurrent writer processes")
    p.add_argument("--duration", type=float, default=8.0, help="seconds of sustained writing per run and path")
    p.add_argument("--warmup", type=int, default=20, help="unmeasured writes (or changes) first")
    p.add_argument("--paths", nargs="+", choices=WRITE_PATHS, default=list(WRITE_PATHS), help="write paths")
    p.add_argument("--modes", nargs="+", choices=PROPAGATION_MODES, default=list(PROPAGATION_MODES))
    p.add_argument("--changes", type=int, default=300, help="measured changes per propagation mode and run")
    p.add_argument("--gap-ms", type=float, default=2.0, help="random pause 0..gap between propagated changes")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


if __name__ == "__main__":
    try:
        asyncio.run(main(cli()))
    except BenchError as exc:
        print(f"vs_etcd: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
