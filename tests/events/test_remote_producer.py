"""Remote producers: ``start(addr=, token=)`` sends batches to a real ``accord serve --events``, which relays them.

The server process is SIGKILLed mid-stream and restarted on the same port: the producer spools while
no server answers and replays after, so every event reaches the table exactly once, in order. The
route's ACL (write on ``events/``) and its checks are exercised against the same real server.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from accord.events import PipelineOptions, SamplingPolicy, start
from tests.events.conftest import wait_for
from tests.harness.accord_server import AccordServer, AccordServers
from tests.harness.redis_server import RedisServer

KEEP_ALL = SamplingPolicy.of(sample_rate=1.0)
OPTIONS = PipelineOptions(flush_interval_s=0.01)
RATE, SECONDS = 500, 12.0
KILL_AT, DOWN_S = 3.0, 4.0


def _token(server: AccordServer, name: str, rules: list[str]) -> str:
    with server.admin() as admin:
        created = admin.post("/api/tokens", json={"name": name, "rules": rules})
    assert created.status_code == 201, created.text
    return str(created.json()["secret"])


def _serve(servers: AccordServers, db_url: str, redis_url: str, tmp_path: Path, **options: Any) -> AccordServer:
    return servers.start(
        db_url, redis_url, args=("--events", "--events-consumer", "srv"), expect_token=True,
        env={"ACCORD_SPOOL_DIR": str(tmp_path / "server-spool")}, **options,
    )  # fmt: skip


async def _produce(pipeline: Any) -> int:
    sent = 0
    loop = asyncio.get_running_loop()
    began = loop.time()
    while (elapsed := loop.time() - began) < SECONDS:
        while sent < int(elapsed * RATE):
            sent += 1
            assert pipeline.emit({"route": "/remote", "status": 200, "n": sent})
        await asyncio.sleep(0.005)
    return sent


async def _kill_and_restart(server: AccordServer) -> None:
    await asyncio.sleep(KILL_AT)
    await asyncio.to_thread(server.kill)  # SIGKILL: no shutdown, no flush
    await asyncio.sleep(DOWN_S)
    await asyncio.to_thread(server.start)


async def test_a_remote_producer_loses_nothing_while_the_server_is_killed_and_restarted(
    own_redis: RedisServer, sqlite_url: str, tmp_path: Path, accord_servers: AccordServers, engine_for
) -> None:
    server = _serve(accord_servers, sqlite_url, own_redis.url, tmp_path)
    writer = _token(server, "pod", ["events/=write"])
    engine, _ = await engine_for(sqlite_url)
    pipeline = await start(
        "remote-svc", addr=server.addr, token=writer, spool_dir=tmp_path / "client-spool", policy=KEEP_ALL,
        options=OPTIONS,
    )  # fmt: skip
    try:
        assert pipeline.health()[0]["stage"] == "server"
        sent, _ = await asyncio.gather(_produce(pipeline), _kill_and_restart(server))
        assert sent >= RATE * (SECONDS - 0.1)

        async def all_in() -> bool:
            async with engine.connect() as conn:
                return (await conn.scalar(sa.text("SELECT count(DISTINCT event_id) FROM accord_event"))) == sent

        await wait_for(all_in, within=90, what=f"{sent} remote events in the table")
        async with engine.connect() as conn:
            arrival = [row[0] for row in await conn.execute(sa.text("SELECT seq FROM accord_event ORDER BY rowid"))]
        assert arrival == list(range(1, sent + 1))  # each exactly once, in the producer's order
        stats = pipeline.stats()
        assert stats.spooled > 0 and stats.replayed == stats.spooled  # the outage was real, and replayed
        assert stats.delivered["server"] > 0 and not stats.dropped
        answer, ready = pipeline.health()
        assert ready and answer["stage"] == "server" and answer["breakers"]["server"]["state"] == "closed"

        with server.client() as client:
            readyz = client.get("/readyz").json()["dependencies"]["events"]
        assert readyz["producer"]["role"] == "producer" and readyz["producer"]["stage"] == "redis"
        assert readyz["producer"]["breakers"]["redis"]["state"] == "closed"
    finally:
        await pipeline.aclose()


async def test_the_route_needs_write_on_events_and_checks_every_line(
    own_redis: RedisServer,
    sqlite_url: str,
    tmp_path: Path,
    accord_servers: AccordServers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = _serve(accord_servers, sqlite_url, own_redis.url, tmp_path)
    reader = _token(server, "reader", ["events/=read"])
    writer = _token(server, "writer", ["events/=write"])
    good = b'{"event_id":"p:1","seq":1,"producer":"p","route":"/a"}\n{"event_id":"p:2","seq":2,"producer":"p"}'
    ndjson = {"Content-Type": "application/x-ndjson"}
    with server.client(reader) as client:
        refused = client.post("/api/events", content=good, headers=ndjson)
    assert refused.status_code == 403 and "events/" in refused.json()["detail"]
    with server.client(writer) as client:
        taken = client.post("/api/events", content=good, headers=ndjson)
        assert taken.status_code == 200 and taken.json() == {"accepted": 2, "stage": "redis"}
        bad = client.post("/api/events", content=good + b'\n{"seq":3}', headers=ndjson)
        assert bad.status_code == 422 and "line 3" in bad.json()["detail"]
        assert client.post("/api/events", content=b"not json", headers=ndjson).status_code == 422

    # ACCORD_ADDR + ACCORD_TOKEN and no database URL: remote mode, as accord.connect decides it
    for name in ("ACCORD_DB_URL", "ACCORD_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACCORD_ADDR", server.addr)
    monkeypatch.setenv("ACCORD_TOKEN", writer)
    from_env = await start("env-svc", spool_dir=tmp_path / "env-spool", policy=KEEP_ALL)
    try:
        for n in range(5):
            from_env.emit({"route": "/env", "status": 200, "n": n})
        assert await from_env.flush()
        assert from_env.stats().delivered == {"server": 5}
    finally:
        await from_env.aclose()
    monkeypatch.delenv("ACCORD_ADDR")

    # a producer whose token may not write keeps everything in its spool (never dropped), and says why
    pipeline = await start("ro", addr=server.addr, token=reader, spool_dir=tmp_path / "ro-spool", policy=KEEP_ALL)
    try:
        for n in range(20):
            pipeline.emit({"route": "/ro", "status": 200, "n": n})

        async def spooled() -> bool:
            return pipeline.stats().spooled == 20

        await wait_for(spooled, within=30, what="the refused producer to spool its events")
        answer, ready = pipeline.health()
        assert ready and answer["stage"] == "spool" and answer["breakers"]["server"]["failures"] >= 1
    finally:
        await pipeline.aclose()


async def test_a_server_without_events_answers_404_naming_the_flag(
    sqlite_url: str, tmp_path: Path, accord_servers: AccordServers
) -> None:
    server = accord_servers.start(sqlite_url, "", expect_token=True)
    writer = _token(server, "pod", ["events/=write"])
    with server.client(writer) as client:
        answer = client.post("/api/events", content=b'{"event_id":"p:1"}')
    assert answer.status_code == 404 and "accord serve --events" in answer.json()["detail"]
