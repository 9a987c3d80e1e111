"""Read latency of a setting on a LiveConfig, beside a plain attribute read and a Redis GET + decode.

Each figure is per read, from timing a batch of reads with ``time.perf_counter_ns`` and dividing by
the batch size (a single attribute read is far below the timer's own cost). The LiveConfig runs on
PostgreSQL + Redis with its bus listening, as a service would; reads never touch either.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path
from time import perf_counter_ns
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis.asyncio as aioredis

import accord
from _common import emit, machine, note, parser, runs_and_overall, services
from accord import Setting, SettingsGroup

REDIS_KEY = "bench:embedding.model"
MODEL = "BAAI/bge-m3"
TARGET_VS_PLAIN = 10.0
TARGET_VS_REDIS = 100.0


class Embedding(SettingsGroup, category="embedding"):
    model: str = Setting(MODEL)
    batch_size: int = Setting(2048, ge=1)


class Plain:
    def __init__(self) -> None:
        self.model = MODEL


class PlainConfig:
    """The same two-step lookup as ``cfg.embedding.model``, on plain objects."""

    def __init__(self) -> None:
        self.embedding = Plain()


def empty_loop(batches: int, size: int) -> list[float]:
    out, rng = [], range(size)
    for _ in range(batches):
        start = perf_counter_ns()
        for _ in rng:
            pass
        out.append((perf_counter_ns() - start) / size)
    return out


def plain_attribute(obj: Plain, batches: int, size: int) -> list[float]:
    out, rng = [], range(size)
    for _ in range(batches):
        start = perf_counter_ns()
        for _ in rng:
            value = obj.model
        out.append((perf_counter_ns() - start) / size)
    del value
    return out


def nested_attribute(obj: PlainConfig, batches: int, size: int) -> list[float]:
    out, rng = [], range(size)
    for _ in range(batches):
        start = perf_counter_ns()
        for _ in rng:
            value = obj.embedding.model
        out.append((perf_counter_ns() - start) / size)
    del value
    return out


def setting_attribute(cfg: accord.LiveConfig, batches: int, size: int) -> list[float]:
    out, rng = [], range(size)
    for _ in range(batches):
        start = perf_counter_ns()
        for _ in rng:
            value = cfg.embedding.model
        out.append((perf_counter_ns() - start) / size)
    assert value == MODEL
    return out


def setting_get(cfg: accord.LiveConfig, batches: int, size: int) -> list[float]:
    out, rng = [], range(size)
    for _ in range(batches):
        start = perf_counter_ns()
        for _ in rng:
            value = cfg.get("embedding.model")
        out.append((perf_counter_ns() - start) / size)
    assert value == MODEL
    return out


async def redis_get(client: aioredis.Redis, cfg: accord.LiveConfig, batches: int, size: int) -> list[float]:
    spec, out, rng = cfg.spec("embedding.model"), [], range(size)
    for _ in range(batches):
        start = perf_counter_ns()
        for _ in rng:
            value = spec.decode((await client.get(REDIS_KEY)).decode())
        out.append((perf_counter_ns() - start) / size)
    assert value == MODEL
    return out


async def redis_get_single(client: aioredis.Redis, cfg: accord.LiveConfig, count: int) -> list[float]:
    """Each GET timed on its own: the true tail, which batching averages away."""
    spec, out = cfg.spec("embedding.model"), []
    for _ in range(count):
        start = perf_counter_ns()
        spec.decode((await client.get(REDIS_KEY)).decode())
        out.append(float(perf_counter_ns() - start))
    return out


CASES = ("empty_loop", "plain_attribute", "nested_plain_attribute", "setting_attribute", "setting_get", "redis_get")


async def one_run(cfg: accord.LiveConfig, client: aioredis.Redis, args: argparse.Namespace) -> dict[str, list[float]]:
    b, s = args.batches, args.batch_size
    sample = {
        "empty_loop": empty_loop(b, s),
        "plain_attribute": plain_attribute(Plain(), b, s),
        "nested_plain_attribute": nested_attribute(PlainConfig(), b, s),
        "setting_attribute": setting_attribute(cfg, b, s),
        "setting_get": setting_get(cfg, b, s),
        "redis_get": await redis_get(client, cfg, args.redis_batches, args.redis_batch_size),
        "redis_get_single": await redis_get_single(client, cfg, args.redis_single),
    }
    return sample


async def main(args: argparse.Namespace) -> None:
    async with services(args) as found:
        client = aioredis.Redis.from_url(found.redis_url)
        await client.set(REDIS_KEY, MODEL.encode())
        cfg = await accord.connect(found.db_url, found.redis_url, groups=[Embedding], use_env=False)
        try:
            samples: dict[str, list[list[float]]] = {case: [] for case in (*CASES, "redis_get_single")}
            for run in range(args.runs):
                for case, values in (await one_run(cfg, client, args)).items():
                    samples[case].append(values)
                note(f"run {run + 1}/{args.runs}: setting {statistics.median(samples['setting_attribute'][-1]):.1f} ns")
        finally:
            await cfg.aclose()
            await client.aclose()
        report(args, found, samples)


def report(args: argparse.Namespace, found: Any, samples: dict[str, list[list[float]]]) -> None:
    figures = {case: runs_and_overall(values, digits=2) for case, values in samples.items()}
    setting = figures["setting_attribute"]["overall"]["median"]
    plain = figures["plain_attribute"]["overall"]["median"]
    redis_ns = figures["redis_get"]["overall"]["median"]
    per_run = [
        {
            "setting_vs_plain": round(statistics.median(a) / statistics.median(p), 2),
            "redis_vs_setting": round(statistics.median(r) / statistics.median(a), 1),
        }
        for a, p, r in zip(samples["setting_attribute"], samples["plain_attribute"], samples["redis_get"], strict=True)
    ]
    comparison = {
        "setting_vs_plain": round(setting / plain, 2),
        "setting_vs_nested_plain": round(setting / figures["nested_plain_attribute"]["overall"]["median"], 2),
        "redis_vs_setting": round(redis_ns / setting, 1),
        "per_run": per_run,
        "target_within_x_of_plain": TARGET_VS_PLAIN,
        "target_faster_than_redis_x": TARGET_VS_REDIS,
        "target_plain_met": setting / plain <= TARGET_VS_PLAIN,
        "target_redis_met": redis_ns / setting >= TARGET_VS_REDIS,
    }
    out = {
        "benchmark": "read_latency",
        "unit": "ns per read (median/p99 over batches)",
        "machine": machine(found),
        "parameters": {k: v for k, v in vars(args).items() if k not in ("db_url", "redis_url")},
        "results": figures,
        "comparison": comparison,
    }
    lines = [
        f"{case:>24}: median {fig['median']:>10.1f} ns  p99 {fig['p99']:>10.1f} ns"
        for case in (*CASES, "redis_get_single")
        if (fig := figures[case]["overall"])
    ]
    lines.append(
        f"setting/plain = {comparison['setting_vs_plain']}x (target <= {TARGET_VS_PLAIN:g}x: "
        f"{'met' if comparison['target_plain_met'] else 'MISSED'}); redis/setting = {comparison['redis_vs_setting']}x "
        f"(target >= {TARGET_VS_REDIS:g}x: {'met' if comparison['target_redis_met'] else 'MISSED'})"
    )
    emit(out, lines)


def cli() -> argparse.Namespace:
    p = parser(__doc__.splitlines()[0], db_name="accord_bench_read")
    p.add_argument("--batches", type=int, default=2000, help="batches per run for the in-memory reads")
    p.add_argument("--batch-size", type=int, default=1000, help="reads per batch for the in-memory reads")
    p.add_argument("--redis-batches", type=int, default=100, help="batches per run of Redis GET + decode")
    p.add_argument("--redis-batch-size", type=int, default=100, help="GETs per batch")
    p.add_argument("--redis-single", type=int, default=2000, help="individually timed GETs per run (true tail)")
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(cli()))
