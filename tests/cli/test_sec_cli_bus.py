"""CLI writes with ACCORD_REDIS_URL publish on Redis like any writer, and `accord status` says how changes travel
(issue 8, item 15). The CLI runs as a subprocess against real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import json

import redis.asyncio as aioredis

import accord
from accord.bus.auth import BusAuth
from accord.bus.wire import decode_change
from tests.cli.cli_helpers import run_cli
from tests.config.procs_worker import Knobs, eventually
from tests.harness import RedisServer


async def test_a_cli_write_is_published_on_redis_and_reaches_a_running_process(pg_url: str, redis_url: str) -> None:
    async with await accord.connect(pg_url, redis_url, groups=[Knobs], check_interval=600.0) as app:
        assert await app.replica.wait_connected(10)
        auth = BusAuth(app.store)
        async with aioredis.Redis.from_url(redis_url) as raw, raw.pubsub() as spy:
            await spy.subscribe((await auth.keys()).changes_channel)
            done = await asyncio.to_thread(
                run_cli, "config", "set", "knobs.level", "7", db=pg_url, extra={"ACCORD_REDIS_URL": redis_url}
            )
            assert done.returncode == 0, done.stderr
            message = None
            for _ in range(50):  # the subscribe confirmation comes first, and reads as None here
                message = await spy.get_message(ignore_subscribe_messages=True, timeout=0.1)
                if message is not None:
                    break
            assert message is not None, "the CLI published its write on redis"
            body = await auth.open(message["data"])
            change = decode_change(body) if body is not None else None
            assert change is not None and change.key == "config/knobs/level"
        await eventually(lambda: app.knobs.level == 7, "the running process to apply the CLI's write from the bus")
        assert app.status().bus == "redis" and app.status().bus_rejected == 0


def status_of(db_url: str, redis_url: str) -> dict[str, object]:
    done = run_cli("status", "--json", db=db_url, extra={"ACCORD_REDIS_URL": redis_url})
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


async def test_status_reports_the_bus_it_would_use_truthfully(pg_url: str, own_redis: RedisServer) -> None:
    async with await accord.connect(pg_url, "", groups=[Knobs], watch=False):
        pass
    # `status` listens for up to a second; on a machine busy with a whole suite a CLI start can need longer to
    # subscribe, so a degraded answer while Redis is up is asked again (twice at most), never accepted.
    for _attempt in range(3):
        up = await asyncio.to_thread(status_of, pg_url, own_redis.url)
        if not up["bus_degraded"]:
            break
    assert (up["bus"], up["bus_degraded"], up["fallback_active"]) == ("redis", False, False), up
    own_redis.kill()
    down = await asyncio.to_thread(status_of, pg_url, own_redis.url)
    assert (down["bus"], down["bus_degraded"], down["fallback_active"]) == ("postgres", True, True), down
    alone = await asyncio.to_thread(status_of, pg_url, "")
    assert (alone["bus"], alone["bus_degraded"]) == ("postgres", False), alone
