"""/api/events: stored wide events, with the filters of ``accord events query``. Needs read on ``events/``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import JsonValue

from accord.core.errors import AccordError
from accord.events.query import EventQuery, parse_since, parse_where, run_query
from accord.server import schemas as s
from accord.server.deps import Caller, State, require_read
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
    store = state.live.store
    if not isinstance(store, SqlKVStore):
        raise AccordError("this server's store keeps no event table")
    query = EventQuery(parse_where(where or []), parse_since(since), limit)
    found: list[dict[str, JsonValue]] = await run_query(store.engine, query)
    return found
