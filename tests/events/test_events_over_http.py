"""``accord events query|stats`` over HTTP (ACCORD_ADDR) print what they print on the database directly."""

from __future__ import annotations

import json
from pathlib import Path

from accord.events import SamplingPolicy, start
from tests.cli.cli_helpers import both, one_line_error, run_cli
from tests.harness.accord_server import AccordServers


async def test_query_and_stats_print_the_same_both_ways(
    redis_url: str, sqlite_url: str, tmp_path: Path, accord_servers: AccordServers
) -> None:
    server = accord_servers.start(sqlite_url, redis_url, expect_token=True)
    keep_all = SamplingPolicy.of(sample_rate=1.0)
    # into the table (no Redis: the database stage), and into the stream with no consumer (lag > 0)
    table = await start("svc", sqlite_url, "", tmp_path / "spool-a", policy=keep_all)
    stream = await start("svc", sqlite_url, redis_url, tmp_path / "spool-b", policy=keep_all)
    try:
        for i in range(40):
            table.emit({"route": "/pay/{order}", "status": 500 if i % 4 == 0 else 200, "user": f"u{i % 5}"})
        for _ in range(7):
            stream.emit({"route": "/x", "status": 200})
        assert await table.flush() and await stream.flush()
    finally:
        await table.aclose()
        await stream.aclose()

    redis = {"ACCORD_REDIS_URL": redis_url}
    for args in (
        ("events", "query", "--json"),
        ("events", "query", "--where", "status=500", "--json"),
        ("events", "query", "--where", "user=u3", "--where", "route=/pay/{order}", "--limit", "5", "--json"),
        ("events", "query", "--since", "1h", "--limit", "3"),
        ("events", "stats", "--json"),
        ("events", "stats"),
    ):
        direct, http = both(sqlite_url, server.addr, server.token, *args, extra=redis)
        assert direct.stdout == http.stdout, args
        assert direct.stdout.strip(), args

    lines = both(sqlite_url, server.addr, server.token, "events", "query", "--where", "user=u3", "--json")[1]
    rows = [json.loads(line) for line in lines.stdout.splitlines()]
    assert len(rows) == 8 and {row["user"] for row in rows} == {"u3"}
    stats = json.loads(both(sqlite_url, server.addr, server.token, "events", "stats", "--json", extra=redis)[1].stdout)
    assert stats["stored"] == 40 and stats["kept_by_rule"] == {"error": 10, "sampled": 30}
    assert stats["stream"]["length"] >= 1 and stats["stream"]["lag"] >= 1

    bad_direct, bad_http = both(sqlite_url, server.addr, server.token, "events", "query", "--where", "nofield", code=2)
    assert one_line_error(bad_direct) == one_line_error(bad_http)


def test_events_over_http_need_read_on_events(sqlite_url: str, redis_url: str, accord_servers: AccordServers) -> None:
    server = accord_servers.start(sqlite_url, redis_url, expect_token=True)
    with server.admin() as admin:
        answer = admin.post("/api/tokens", json={"name": "cfg-reader", "rules": ["config/=read"]})
        answer.raise_for_status()
        secret = answer.json()["secret"]
    for args in (("events", "query", "--json"), ("events", "stats", "--json")):
        denied = run_cli(*args, addr=server.addr, token=secret, code=None)
        assert denied.returncode != 0 and "events/" in denied.stderr, denied
