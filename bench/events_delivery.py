"""Event delivery throughput: into Redis from one process, end to end into PostgreSQL, and drain after an outage.

    .venv/bin/python bench/events_delivery.py --runs 3 > bench/results/events_delivery.json

1. *redis*: N kept events emitted as fast as possible, then the time until the pipeline has added
   them all to the stream (events/s); beside it, in the same run, a bare redis-py loop XADDing the
   same JSON payloads in pipelines of the same batch size (the floor the pipeline's work adds to).
2. *e2e*: the same N events from emit until a consumer (``accord events consume``, its own process)
   has inserted them all into PostgreSQL; beside it, the producer's database stage alone (straight
   ``INSERT ... ON CONFLICT DO NOTHING`` batches, no Redis).
3. *consumer*: N events already in the stream, drained by one in-process consumer into PostgreSQL:
   the batch insert it uses (``accord.events.bulk``: one ``INSERT … SELECT FROM unnest`` of column
   arrays) beside the store's ``insert_events`` (SQLAlchemy executemany), same stream, same run,
   alternating which goes first.
4. *drain*: a private redis-server is killed for ``--outage`` seconds while a producer emits
   ``--rate`` events/s (no database stage: the spool takes them); the time from the restart until the
   spool is empty and until the table holds every event.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import emit, machine, note, parser, services

from accord.events import PipelineOptions, SamplingPolicy, start
from accord.store.engine import create_engine

POLICY = SamplingPolicy.of(sample_rate=1.0)


def _event(i: int) -> dict[str, Any]:
    return {"request_id": f"{i:032x}", "method": "GET", "route": "/items/{item}", "status": 200, "duration_ms": 3.2,
            "item": str(i), "user": "u-17"}  # fmt: skip


async def _count(engine: Any) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text("SELECT count(*) FROM accord_event")))


async def _reset(db_url: str, redis_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("DELETE FROM accord_event"))
    except sa.exc.ProgrammingError:
        pass
    finally:
        await engine.dispose()
    client = aioredis.Redis.from_url(redis_url)
    for key in [k async for k in client.scan_iter("accord:{*:events}:*")]:
        await client.delete(key)
    await client.aclose()


async def redis_rate(db_url: str, redis_url: str, n: int, spool: Path) -> dict[str, float]:
    await _reset(db_url, redis_url)
    opts = PipelineOptions(buffer_events=n + 1, unconfirmed_max=n + 1, stream_maxlen=max(1_000_000, 2 * n))
    pipeline = await start("bench", db_url, redis_url, spool, policy=POLICY, options=opts, database_stage=False)
    t0 = time.perf_counter()
    for i in range(n):
        pipeline.emit(_event(i))
    await pipeline.flush(timeout_s=600)
    ours = n / (time.perf_counter() - t0)
    await pipeline.aclose()
    client = aioredis.Redis.from_url(redis_url)
    payloads = [orjson.dumps(_event(i) | {"event_id": f"x:{i}"}) for i in range(n)]
    t0 = time.perf_counter()
    for start_at in range(0, n, 500):
        pipe = client.pipeline(transaction=False)
        for payload in payloads[start_at : start_at + 500]:
            pipe.xadd("bench:bare", {b"e": payload}, maxlen=1_000_000, approximate=True)
        await pipe.execute()
    bare = n / (time.perf_counter() - t0)
    await client.delete("bench:bare")
    await client.aclose()
    return {"pipeline_events_per_s": round(ours), "bare_xadd_events_per_s": round(bare)}


def _consumer(db_url: str, redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    accord = str(Path(sys.executable).with_name("accord"))
    env = {**os.environ, "ACCORD_DB_URL": db_url, "ACCORD_REDIS_URL": redis_url}
    with log.open("ab") as out:
        return subprocess.Popen([accord, "events", "consume", "--name", "bench", "--batch", "100"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


async def _until_count(engine: Any, n: int, limit_s: float = 600) -> None:
    deadline = time.monotonic() + limit_s
    while await _count(engine) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the table did not reach {n} events")
        await asyncio.sleep(0.05)


async def e2e_rate(db_url: str, redis_url: str, n: int, spool: Path) -> dict[str, float]:
    await _reset(db_url, redis_url)
    opts = PipelineOptions(buffer_events=n + 1, unconfirmed_max=n + 1, stream_maxlen=max(1_000_000, 2 * n))
    engine = create_engine(db_url)
    consumer = _consumer(db_url, redis_url, spool.parent / "consumer.log")
    try:
        pipeline = await start("bench", db_url, redis_url, spool, policy=POLICY, options=opts, database_stage=False)
        t0 = time.perf_counter()
        for i in range(n):
            pipeline.emit(_event(i))
        await _until_count(engine, n)
        ours = n / (time.perf_counter() - t0)
        await pipeline.aclose()
    finally:
        consumer.terminate()
        consumer.wait()
    await _reset(db_url, redis_url)
    pipeline = await start("bench", db_url, None, spool, policy=POLICY, options=opts)
    t0 = time.perf_counter()
    for i in range(n):
        pipeline.emit(_event(i))
    await _until_count(engine, n)
    direct = n / (time.perf_counter() - t0)
    await pipeline.aclose()
    await engine.dispose()
    return {"e2e_events_per_s": round(ours), "database_stage_events_per_s": round(direct)}


async def consumer_rate(db_url: str, redis_url: str, n: int, spool: Path, run: int) -> dict[str, float]:
    from accord.events.bulk import insert_rows
    from accord.events.consumer import Consumer, ConsumerOptions
    from accord.events.factory import MigratedEngine
    from accord.events.keys import GROUP
    from accord.store.events import insert_events

    await _reset(db_url, redis_url)
    opts = PipelineOptions(buffer_events=n + 1, unconfirmed_max=n + 1, stream_maxlen=max(1_000_000, 2 * n))
    pipeline = await start("bench", db_url, redis_url, spool, policy=POLICY, options=opts, database_stage=False)
    for i in range(n):
        pipeline.emit(_event(i))
    await pipeline.flush(timeout_s=600)
    await pipeline.aclose()
    migrated = MigratedEngine(create_engine(db_url))
    keys = await migrated.keys()
    client = aioredis.Redis.from_url(redis_url)
    inserters = {"bulk": insert_rows, "executemany": insert_events}
    order = list(inserters) if run % 2 == 0 else list(reversed(inserters))
    figures: dict[str, float] = {}
    try:
        for name in order:
            async with migrated.engine.begin() as conn:
                await conn.execute(sa.text("DELETE FROM accord_event"))
            await client.xgroup_destroy(keys.stream, GROUP)
            await client.xgroup_create(keys.stream, GROUP, id="0")
            consumer = Consumer.from_url(redis_url, migrated.engine, keys, ConsumerOptions(name=f"drain-{name}"),
                                         inserter=inserters[name])  # fmt: skip
            stop = asyncio.Event()
            t0 = time.perf_counter()
            task = asyncio.create_task(consumer.run(stop))
            await _until_count(migrated.engine, n)
            figures[f"consumer_{name}_events_per_s"] = round(n / (time.perf_counter() - t0))
            stop.set()
            await task
            await consumer.aclose()
    finally:
        await client.aclose()
        await migrated.engine.dispose()
    figures["consumer_bulk_ratio"] = round(
        figures["consumer_bulk_events_per_s"] / figures["consumer_executemany_events_per_s"], 3
    )
    return figures


async def drain(db_url: str, workdir: Path, rate: int, outage_s: float) -> dict[str, float]:
    from tests.harness import RedisServer  # the repository root is on sys.path (top of this file)

    redis_server = RedisServer(workdir / "drain-redis")
    await asyncio.to_thread(redis_server.start)
    await _reset(db_url, redis_server.url)
    engine = create_engine(db_url)
    consumer = _consumer(db_url, redis_server.url, workdir / "drain-consumer.log")
    pipeline = await start("bench", db_url, redis_server.url, workdir / "drain-spool", policy=POLICY,
                           database_stage=False)  # fmt: skip
    sent = 0
    try:
        await asyncio.to_thread(redis_server.kill)
        loop = asyncio.get_running_loop()
        began = loop.time()
        while (elapsed := loop.time() - began) < outage_s:
            while sent < int(elapsed * rate):
                sent += 1
                pipeline.emit(_event(sent))
            await asyncio.sleep(0.005)
        spooled = pipeline.stats().spooled
        await asyncio.to_thread(redis_server.start)
        t0 = time.perf_counter()
        await pipeline.flush(timeout_s=600)
        spool_empty = time.perf_counter() - t0
        await _until_count(engine, sent)
        in_table = time.perf_counter() - t0
    finally:
        await pipeline.aclose()
        consumer.terminate()
        consumer.wait()
        redis_server.close()
        await engine.dispose()
    return {
        "events": sent,
        "spooled": spooled,
        "spool_empty_s": round(spool_empty, 3),
        "in_table_s": round(in_table, 3),
    }


async def main() -> None:
    p = parser(__doc__ or "", db_name="accord_bench_events")
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--rate", type=int, default=2000)
    p.add_argument("--outage", type=float, default=10.0)
    args = p.parse_args()
    async with services(args) as found:
        per_run: list[dict[str, Any]] = []
        for run in range(args.runs):
            note(f"run {run + 1}/{args.runs}")
            spool = found.workdir / f"spool-{run}"
            figures = await redis_rate(found.db_url, found.redis_url, args.events, spool)
            figures |= await e2e_rate(found.db_url, found.redis_url, args.events, spool)
            figures |= await consumer_rate(found.db_url, found.redis_url, args.events, spool, run)
            figures |= await drain(found.db_url, found.workdir / f"drain-{run}", args.rate, args.outage)
            note(str(figures))
            per_run.append(figures)
        medians = {k: statistics.median(r[k] for r in per_run) for k in per_run[0]}
        lines = [f"{k}: median {v} (runs: {[r[k] for r in per_run]})" for k, v in medians.items()]
        emit({"benchmark": "events_delivery", "events": args.events, "runs": per_run, "medians": medians,
              "machine": machine(found)}, lines)  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
