"""/api/events (and /stats): stored wide events, as ``accord events query`` and ``stats`` (read on ``events/``);
``POST /api/events``: a remote producer's batch, relayed into this server's stages (write on ``events/``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import JsonValue
from sqlalchemy.ext.asyncio import AsyncEngine

from accord.core.errors import AccordError, NotFoundError
from accord.events.query import EventQuery, parse_since, parse_where, run_query
from accord.server import schemas as s
from accord.server.deps import Caller, State, require_read, require_write
from accord.server.state import ServerState
from accord.store.kv import SqlKVStore

router = APIRouter(prefix="/api/events", tags=["events"], responses=s.ERROR_RESPONSES)
EVENTS_ACL_KEY = "events/"


@router.get("", summary="Stored events, newest first, filtered by field equality and time")
async def list_events(
    state: State,
    caller: Caller,
    where: Annotated[list[str] | None, Query(max_length=600, description="FIELD=VALUE, repeatable")] = None,
    since: Annotated[str | None, Query(max_length=64, description="ISO time or a duration back: 10m, 2h, 1d")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[dict[str, JsonValue]]:
    require_read(caller, EVENTS_ACL_KEY)
    query = EventQuery(parse_where(where or []), parse_since(since), limit)
    found: list[dict[str, JsonValue]] = await run_query(_engine(state), query)
    return found


@router.post(
    "",
    summary="Add a remote producer's batch of events (one JSON object per line); 200 once they are safe",
    # declared as text/plain (OpenAPI tools know no NDJSON serializer); the Content-Type is not checked, producers
    # send application/x-ndjson
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "One JSON object per line, each with a string event_id (application/x-ndjson).",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def add_events(caller: Caller, request: Request) -> dict[str, JsonValue]:
    """The batch goes through this server's own delivery (Redis, the database, its spool: ``accord serve
    --events``); the answer comes once it is in one of them, naming which."""
    require_write(caller, EVENTS_ACL_KEY)
    from accord.events.relay import parse_batch

    served = getattr(request.app.state, "events", None)
    relay = getattr(served, "relay", None)
    if relay is None:
        raise NotFoundError("this server does not relay events: run it with accord serve --events")
    payloads = parse_batch(await request.body())
    stage = await relay.accept(payloads)
    return {"accepted": len(payloads), "stage": stage}


@router.get("/stats", summary="Stored events per rule and status class; the stream's length, lag, pending, DLQ")
async def event_stats(state: State, caller: Caller, request: Request) -> dict[str, JsonValue]:
    """What ``accord events stats`` prints, from this server's database and Redis (the stream part only with Redis)."""
    require_read(caller, EVENTS_ACL_KEY)
    from accord.events.admin import stats_on

    found: dict[str, JsonValue] = await stats_on(_engine(state), getattr(request.app.state, "redis_url", None))
    return found


@router.get("/producers", summary="Every producer's last report: its delivery stage, fallback, drops (database only)")
async def event_producers(state: State, caller: Caller) -> list[dict[str, JsonValue]]:
    """The producers' rows alone, read without Redis: a Redis outage is when their fallback matters."""
    require_read(caller, EVENTS_ACL_KEY)
    from accord.events.reports import read_reports

    found: list[dict[str, JsonValue]] = await read_reports(_engine(state))
    return found


def _engine(state: ServerState) -> AsyncEngine:
    store = state.live.store
    if not isinstance(store, SqlKVStore):
        raise AccordError("this server's store keeps no event table")
    return store.engine
