"""``accord events consume|query|stats|dlq``: the event pipeline on the terminal (docs/events.md).

They work on the database and Redis directly, every command one call into accord.events.admin; with
ACCORD_ADDR set, ``query`` and ``stats`` ask that server instead (GET /api/events, /api/events/stats),
printing the same thing (``consume`` and ``dlq`` stay direct: they need the stream itself).
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated, Any
from urllib.parse import urlencode

import typer

from accord.cli import output
from accord.cli.errors import run
from accord.cli.options import DirectDbUrl, Json, RedisUrl

__all__ = ["events_app"]

events_app = typer.Typer(
    help="Consume, query and count the wide events of the event pipeline.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
dlq_app = typer.Typer(help="The dead-letter stream: entries the consumer gave up on.", no_args_is_help=True)
events_app.add_typer(dlq_app, name="dlq")


@events_app.command()
@run
async def consume(
    db_url: DirectDbUrl = None,
    redis_url: RedisUrl = None,
    name: Annotated[
        str | None, typer.Option(help="Consumer name; a restart with the same name reads its pending entries first.")
    ] = None,
    batch: Annotated[
        int, typer.Option(min=1, max=10_000, help="Stream entries per read and insert (each up to 50 events).")
    ] = 100,
    max_deliveries: Annotated[int, typer.Option(min=1, help="Deliveries after which an entry goes to the DLQ.")] = 5,
    claim_idle: Annotated[
        float, typer.Option(min=0.01, help="Seconds an entry may sit unacknowledged before another consumer claims it.")
    ] = 30.0,
    metrics_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Serve the consumer's Prometheus metrics on this port.")
    ] = None,
) -> None:
    """Move events from the Redis stream into the database (runs until stopped)."""
    from accord.events.admin import consume as run_consumer
    from accord.events.consumer import ConsumerOptions

    options = ConsumerOptions(name or socket.gethostname(), batch, max_deliveries, int(claim_idle * 1000))
    await run_consumer(db_url, redis_url, options, metrics_port=metrics_port)


@events_app.command()
@run
async def query(
    where: Annotated[list[str] | None, typer.Option("--where", help="FIELD=VALUE (repeatable).")] = None,
    since: Annotated[str | None, typer.Option(help="An ISO time or a duration back from now: 10m, 2h, 1d.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many events, newest first.")] = 100,
    db_url: DirectDbUrl = None,
    json_out: Json = False,
) -> None:
    """Stored events, newest first; --json prints one JSON object per line."""
    from accord.events.query import EventQuery, parse_since, parse_where

    query = EventQuery(parse_where(where or []), parse_since(since), limit)  # checked here either way
    server = _server()
    if server is not None:
        pairs = [("where", item) for item in where or []] + [("limit", str(limit))]
        pairs += [("since", since)] if since else []
        async with server as backend:
            found = await backend.get_json("/api/events", pairs)
    else:
        from accord.events.admin import query_events

        found = await query_events(db_url, query)
    if json_out:
        for event in found:
            output.line(json.dumps(event, sort_keys=True))
        return
    table = output.plain_table(["ts", "route", "status", "rule", "request_id", "event_id"])
    for e in found:
        row = (e.get("ts"), e.get("route"), e.get("status"), e.get("sampling_rule"), e.get("request_id"), e["event_id"])
        table.add_row(*(output.optional(v) for v in row))
    output.console.print(table)


@events_app.command()
@run
async def stats(db_url: DirectDbUrl = None, redis_url: RedisUrl = None, json_out: Json = False) -> None:
    """Stored events per rule and status class; the stream's length, lag, pending and DLQ length."""
    server = _server()
    if server is not None:
        async with server as backend:
            found = await backend.get_json("/api/events/stats", [])
    else:
        from accord.events.admin import event_stats

        found = await event_stats(db_url, redis_url)
    if json_out:
        output.print_json(found)
        return
    producers = found.pop("producers", [])
    for name, value in found.items():
        output.line(f"{name}: {json.dumps(value, sort_keys=True)}")
    _print_producers(producers)


def _print_producers(producers: list[dict[str, Any]]) -> None:
    """Each producer's report (docs/events.md, "Producer reports"): a fallback stage or a stale row stands out."""
    if not producers:
        output.line("producers: none reporting (remote producers report through the server's relay)")
        return
    table = output.plain_table(["service", "instance", "stage", "ready", "dropped", "spooled", "reported"])
    for p in producers:
        stage = f"{p['stage']} (fallback from {p['top_stage']})" if p["fallback"] else p["stage"]
        age = f"{p['age_s']:g} s ago" + (" (stale)" if p["stale"] else "")
        dropped = str(sum(p["dropped"].values()))
        table.add_row(
            p["service"], p["instance"], stage, "yes" if p["ready"] else "NO", dropped, str(p["spooled"]), age
        )
    output.console.print(table)


@dlq_app.command("list")
@run
async def dlq_list(
    db_url: DirectDbUrl = None,
    redis_url: RedisUrl = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many entries, oldest first.")] = 100,
    json_out: Json = False,
) -> None:
    """Entries in the DLQ: original id, deliveries, error and the (already masked) event."""
    from accord.events.admin import dead_letters

    letters = await dead_letters(db_url, redis_url, limit)
    if json_out:
        output.print_json([asdict(letter) for letter in letters])
        return
    table = output.plain_table(["dlq id", "original id", "deliveries", "error"])
    for letter in letters:
        table.add_row(letter.dlq_id, letter.original_id, str(letter.deliveries), letter.error)
    output.console.print(table)


@dlq_app.command("replay")
@run
async def dlq_replay(
    ids: Annotated[list[str] | None, typer.Option("--id", help="A DLQ entry id (repeatable); all when none.")] = None,
    db_url: DirectDbUrl = None,
    redis_url: RedisUrl = None,
) -> None:
    """Add DLQ entries back to the stream and delete them from the DLQ."""
    from accord.events.admin import replay_dead_letters

    count = await replay_dead_letters(db_url, redis_url, ids)
    output.note(f"replayed {count} entr{'y' if count == 1 else 'ies'} from the DLQ")


def _server() -> contextlib.AbstractAsyncContextManager[Any] | None:
    """The server named by ACCORD_ADDR (as every CLI command talks to), else None: work on the database."""
    from accord.core import environ

    settings = environ.current()
    if settings.addr is None:
        return None
    from accord.cli.backend.http import HttpBackend

    class EventsOverHttp(HttpBackend):
        async def get_json(self, path: str, pairs: list[tuple[str, str]]) -> Any:
            return await self._call("GET", f"{path}?{urlencode(pairs)}" if pairs else path)

    @contextlib.asynccontextmanager
    async def opened() -> AsyncIterator[EventsOverHttp]:
        backend = EventsOverHttp(settings.addr or "", settings.token)
        try:
            yield backend
        finally:
            await backend.aclose()

    return opened()
