"""Propagation latency: ``await cfg.set(...)`` returning in process A to ``on_change`` running in process B.

A and B are separate OS processes (B is spawned). Both stamp events with ``time.monotonic_ns()``,
which reads CLOCK_MONOTONIC: one clock for the whole machine on Linux, so the two stamps compare
directly. A waits for B's acknowledgement before the next change (plus a small random gap, so a
polling receiver is not phase-locked to the writer), so every figure is one change's own latency.
Modes: Redis bus (PostgreSQL + Redis), PostgreSQL NOTIFY (no Redis), SQLite polling, and a bare
Redis pub/sub round (publish in A, message received in B) with the same client library for scale.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import random
import sys
import time
from collections.abc import AsyncIterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis.asyncio as aioredis

import accord
from _common import BenchError, Services, emit, machine, note, parser, recv, runs_and_overall, services
from accord import Setting, SettingsGroup

MODES = ("redis", "postgres", "sqlite", "redis_pubsub")
TARGET_P99_MS = {"redis": 2.0, "postgres": 10.0, "sqlite": 500.0}
PING_CHANNEL = "accord-bench:ping"
ACK_TIMEOUT_S = 15.0  # longer than the 5 s revision check, so a lost bus message shows as an outlier


class Bench(SettingsGroup, category="bench"):
    value: str = Setting("")


# ----- process B ---------------------------------------------------------------------------------


def receiver(conn: Connection, mode: str, urls: dict[str, str], poll_interval: float | None) -> None:
    """Entry point of process B."""
    asyncio.run(_receive(conn, mode, urls, poll_interval))


async def _receive(conn: Connection, mode: str, urls: dict[str, str], poll_interval: float | None) -> None:
    seen: set[object] = set()

    def stamp(value: object) -> None:
        now = time.monotonic_ns()
        if value not in seen:
            seen.add(value)
            conn.send((value, now))

    if mode == "redis_pubsub":
        async with _pubsub(urls["redis"]) as pubsub:
            conn.send(("ready", 0))
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    if message["data"] == b"stop":
                        break
                    stamp(message["data"].decode())
        conn.send(("closed", 0))
        return
    cfg = await open_config(mode, urls, poll_interval)
    cfg.on_change("bench.value", lambda change: stamp(change.new))
    await _until_listening(cfg)
    conn.send(("ready", 0))
    await recv(conn, 3600)
    await cfg.aclose()
    conn.send(("closed", 0))


@contextlib.asynccontextmanager
async def _pubsub(url: str) -> AsyncIterator[Any]:
    client = aioredis.Redis.from_url(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(PING_CHANNEL)
        yield pubsub
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()


async def _until_listening(cfg: accord.LiveConfig) -> None:
    for _ in range(500):
        status = cfg.status()
        if not status.bus_degraded and not status.fallback_active:
            return
        await asyncio.sleep(0.01)
    raise BenchError(f"the receiver's bus never connected: {cfg.status()}")


async def open_config(mode: str, urls: dict[str, str], poll_interval: float | None) -> accord.LiveConfig:
    options: dict[str, Any] = {"groups": [Bench], "use_env": False}
    if poll_interval is not None:
        options["poll_interval"] = poll_interval
    if mode == "redis":
        return await accord.connect(urls["pg"], urls["redis"], **options)
    if mode == "postgres":
        return await accord.connect(urls["pg"], "", **options)
    return await accord.connect(urls["sqlite"], "", **options)


# ----- process A ---------------------------------------------------------------------------------


class Sender:
    """One mode, one run: B spawned and listening, A connected, changes sent one at a time."""

    def __init__(self, mode: str, urls: dict[str, str], args: argparse.Namespace) -> None:
        self.mode, self.urls, self.args = mode, urls, args
        self.cfg: accord.LiveConfig | None = None
        self.client: aioredis.Redis | None = None
        gap = args.gap_ms / 1000
        if mode == "sqlite":
            gap = max(gap, args.poll_interval if args.poll_interval is not None else _default_poll())
        self.gap = gap

    async def send(self, value: str) -> None:
        if self.cfg is not None:
            await self.cfg.set("bench.value", value)
        else:
            assert self.client is not None
            await self.client.publish(PING_CHANNEL, value)

    async def measure(self, run: int, rng: random.Random) -> dict[str, list[float]]:
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        child = ctx.Process(target=receiver, args=(theirs, self.mode, self.urls, self.args.poll_interval))
        child.start()
        try:
            await _expect(ours, "ready", 120)
            await self._open()
            for i in range(self.args.warmup):
                await self._one(ours, f"w{run}-{i}", rng)
            sample: dict[str, list[float]] = {"after_return_us": [], "from_call_us": [], "set_us": []}
            for i in range(self.args.changes):
                after, whole, call = await self._one(ours, f"v{run}-{i}", rng)
                sample["after_return_us"].append(after)
                sample["from_call_us"].append(whole)
                sample["set_us"].append(call)
            return sample
        finally:
            await self._close(ours)
            child.join(30)
            if child.is_alive():
                child.kill()

    async def _one(self, conn: Connection, value: str, rng: random.Random) -> tuple[float, float, float]:
        await asyncio.sleep(rng.uniform(0, self.gap))
        called = time.monotonic_ns()
        await self.send(value)
        returned = time.monotonic_ns()
        while True:
            got, received = await recv(conn, ACK_TIMEOUT_S)
            if got == value:
                return (received - returned) / 1000, (received - called) / 1000, (returned - called) / 1000

    async def _open(self) -> None:
        if self.mode == "redis_pubsub":
            self.client = aioredis.Redis.from_url(self.urls["redis"])
            await self.client.ping()
        else:
            self.cfg = await open_config(self.mode, self.urls, self.args.poll_interval)

    async def _close(self, conn: Connection) -> None:
        if self.cfg is not None:
            conn.send("stop")
            await self.cfg.aclose()
        elif self.client is not None:
            await self.client.publish(PING_CHANNEL, "stop")
            await self.client.aclose()
        with contextlib.suppress(BenchError, EOFError):
            await _expect(conn, "closed", 30)


async def _expect(conn: Connection, what: str, within_s: float) -> None:
    while True:
        got, _ = await recv(conn, within_s)
        if got == what:
            return


def _default_poll() -> float:
    from accord.bus.local_bus import DEFAULT_POLL_INTERVAL_S

    return DEFAULT_POLL_INTERVAL_S


# ----- the benchmark -----------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    async with services(args) as found:
        urls = {"pg": found.db_url, "redis": found.redis_url, "sqlite": f"sqlite:///{found.workdir / 'bench.db'}"}
        samples: dict[str, dict[str, list[list[float]]]] = {m: {} for m in args.modes}
        for run in range(args.runs):
            for mode in args.modes:
                sample = await Sender(mode, urls, args).measure(run, rng)
                for name, values in sample.items():
                    samples[mode].setdefault(name, []).append(values)
                after = sorted(sample["after_return_us"])
                note(f"run {run + 1}/{args.runs} {mode:>12}: p50 {after[len(after) // 2] / 1000:.3f} ms")
        report(args, found, samples)


def report(args: argparse.Namespace, found: Services, samples: dict[str, dict[str, list[list[float]]]]) -> None:
    results: dict[str, Any] = {}
    lines = []
    for mode, by_measure in samples.items():
        figures = {name: runs_and_overall(values, digits=1) for name, values in by_measure.items()}
        overall = figures["after_return_us"]["overall"]
        target = TARGET_P99_MS.get(mode)
        if target is not None:
            figures["target_p99_ms"] = target
            figures["target_met"] = overall["p99"] / 1000 <= target
        results[mode] = figures
        verdict = (
            "" if target is None else f"  target p99 <= {target:g} ms: {'met' if figures['target_met'] else 'MISSED'}"
        )
        lines.append(
            f"{mode:>12}: p50 {overall['median'] / 1000:8.3f} ms  p99 {overall['p99'] / 1000:8.3f} ms  "
            f"(from call: p50 {figures['from_call_us']['overall']['median'] / 1000:.3f} ms){verdict}"
        )
    out = {
        "benchmark": "propagation",
        "unit": "microseconds; after_return_us = set() returned in A -> on_change ran in B",
        "machine": machine(found),
        "parameters": {k: v for k, v in vars(args).items() if k not in ("db_url", "redis_url")}
        | {"poll_interval_effective": args.poll_interval if args.poll_interval is not None else _default_poll()},
        "results": results,
    }
    emit(out, lines)


def cli() -> argparse.Namespace:
    p = parser(__doc__.splitlines()[0], db_name="accord_bench_propagation")
    p.add_argument("--changes", type=int, default=500, help="measured changes per mode per run")
    p.add_argument(
        "--warmup", type=int, default=20, help="unmeasured changes first (connections, prepared statements, Lua script)"
    )
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="what to measure")
    p.add_argument(
        "--poll-interval",
        type=float,
        default=None,
        help="SQLite poll interval in seconds; unset means the library's default",
    )
    p.add_argument(
        "--gap-ms", type=float, default=2.0, help="random pause 0..gap between changes (SQLite: at least one poll)"
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the random gaps")
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(cli()))
