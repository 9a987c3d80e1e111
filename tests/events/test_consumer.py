"""The consumer as a real process: SIGKILLed mid-stream, restarted, nothing lost; poison to the DLQ and back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import redis.asyncio as aioredis
import sqlalchemy as sa

from accord.events import SamplingPolicy, start
from accord.events.consumer import Consumer, ConsumerOptions, stream_status
from accord.events.dlq import list_dead, replay_dead
from accord.events.keys import FIELD
from tests.events.conftest import consume_until, event_ids, wait_for

TOTAL = 3000


def _consumer_process(name: str, db_url: str, redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    accord = str(Path(sys.executable).with_name("accord"))
    env = {**os.environ, "ACCORD_DB_URL": db_url, "ACCORD_REDIS_URL": redis_url}
    args = [accord, "events", "consume", "--name", name, "--batch", "2", "--claim-idle", "0.3"]  # 2 entries: 100 events
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)


async def _count(engine) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text("SELECT count(*) FROM accord_event")))


async def test_a_consumer_killed_mid_stream_loses_nothing_and_duplicates_nothing(
    redis_url: str, pg_url: str, tmp_path: Path, engine_for
) -> None:
    engine, keys = await engine_for(pg_url)
    pipeline = await start(
        "svc", pg_url, redis_url, tmp_path / "spool", policy=SamplingPolicy.of(sample_rate=1.0), database_stage=False
    )
    for i in range(TOTAL):
        pipeline.emit({"route": "/k", "status": 200, "i": i})
    assert await pipeline.flush()
    first = _consumer_process("c1", pg_url, redis_url, tmp_path / "c1.log")
    try:

        async def some_arrived() -> bool:
            return await _count(engine) >= 200

        await wait_for(some_arrived, within=60, what="the first consumer to insert some batches")
        first.send_signal(signal.SIGKILL)
        first.wait()
        stranded = await _count(engine)
        assert stranded < TOTAL  # killed mid-stream
        second = _consumer_process("c2", pg_url, redis_url, tmp_path / "c2.log")  # claims what c1 left pending
        try:

            async def all_arrived() -> bool:
                return await _count(engine) == TOTAL

            await wait_for(all_arrived, within=60, what="the second consumer to finish the stream")

            async def nothing_pending() -> bool:
                client = aioredis.Redis.from_url(redis_url)
                try:
                    return (await stream_status(client, keys)).pending == 0
                finally:
                    await client.aclose()

            await wait_for(nothing_pending, within=30, what="every entry acknowledged")
        finally:
            second.terminate()
            second.wait()
    finally:
        if first.poll() is None:
            first.kill()
        await pipeline.aclose()
    ids = await event_ids(engine)
    assert len(ids) == len(set(ids)) == TOTAL
    async with engine.connect() as conn:
        seqs = sorted(row[0] for row in await conn.execute(sa.text("SELECT seq FROM accord_event")))
    assert seqs == list(range(1, TOTAL + 1))


async def test_poison_reaches_the_dlq_after_n_deliveries_and_replays(
    redis_url: str, sqlite_url: str, engine_for
) -> None:
    engine, keys = await engine_for(sqlite_url)
    client = aioredis.Redis.from_url(redis_url)
    good = orjson.dumps({"event_id": "g:1", "producer": "g", "seq": 1, "ts": 1.0, "service": "s"})
    await client.xadd(keys.stream, {FIELD: b"{not json"})
    await client.xadd(keys.stream, {FIELD: orjson.dumps({"no_event_id": True})})
    await client.xadd(keys.stream, {FIELD: good})
    options = ConsumerOptions("c1", batch=10, max_deliveries=3, claim_idle_ms=50, block_ms=50)
    consumer = Consumer(client, engine, keys, options)
    try:

        async def two_dead() -> bool:
            return int(await client.xlen(keys.dlq)) == 2

        await consume_until(consumer, two_dead)
        assert await event_ids(engine) == ["g:1"]
        letters = await list_dead(client, keys)
        assert all(letter.deliveries == 4 for letter in letters)  # more than max_deliveries=3
        assert {letter.error.split(":")[0] for letter in letters} == {"JSONDecodeError", "ValueError"}
        assert (await stream_status(client, keys)).pending == 0
        await client.xadd(keys.stream, {FIELD: orjson.dumps({"event_id": "g:2", "seq": 2})})
        [fixable] = [letter for letter in letters if "not a JSON object" in letter.error]
        await client.xdel(keys.dlq, fixable.dlq_id)  # the operator repaired it: replay the other one
        assert await replay_dead(client, keys) == 1
        assert int(await client.xlen(keys.dlq)) == 0

        async def back_in_dlq() -> bool:
            return int(await client.xlen(keys.dlq)) == 1 and len(await event_ids(engine)) == 2

        await consume_until(consumer, back_in_dlq)  # still poison: it went round again, and g:2 went in
    finally:
        await client.aclose()
