"""/api/events/dlq: the dead-letter stream listed and replayed over HTTP (``accord events dlq list|replay``).

Reading needs read on ``events/``, replaying write on it. Both use the server's own database (for the
deployment's key names) and its own Redis (``--redis-url`` / ACCORD_REDIS_URL); without Redis there is no
stream and the answer is an error naming that. The payloads were masked before they reached the stream.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from redis.exceptions import RedisError

from accord.bus.redis_conn import resolve_redis_url
from accord.core.errors import AccordError, StoreUnavailableError
from accord.events.dlq import list_dead, replay_dead
from accord.events.keys import EventKeys
from accord.events.redis_stage import redis_client
from accord.server import schemas as s
from accord.server.deps import Caller, State, require_read, require_write
from accord.server.routes.events import EVENTS_ACL_KEY
from accord.server.state import ServerState
from accord.store.deployment import redis_keys_of
from accord.store.kv import SqlKVStore

router = APIRouter(prefix="/api/events/dlq", tags=["events"], responses=s.ERROR_RESPONSES)


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[Annotated[str, Field(pattern=r"^\d+-\d+$")]] | None = Field(
        default=None, max_length=1000, description="DLQ entry ids; none: every entry"
    )


@router.get("", summary="DLQ entries, oldest first: original id, deliveries, error, payload (masked)")
async def dlq_list(
    state: State, caller: Caller, request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, JsonValue]]:
    require_read(caller, EVENTS_ACL_KEY)
    keys, url = await _stream(state, request)
    client = redis_client(url)
    try:
        return [asdict(letter) for letter in await list_dead(client, keys, limit=limit)]
    except (RedisError, OSError) as exc:
        raise StoreUnavailableError(f"Redis is unavailable: {type(exc).__name__}") from exc
    finally:
        await client.aclose()


@router.post("/replay", summary="Add DLQ entries (all, or those named) back to the stream; how many")
async def dlq_replay(
    state: State, caller: Caller, request: Request, body: Annotated[ReplayIn, Body()]
) -> dict[str, int]:
    """Not an audit record: it writes Redis, not the store (like ``accord events dlq replay``)."""
    require_write(caller, EVENTS_ACL_KEY)
    keys, url = await _stream(state, request)
    client = redis_client(url)
    try:
        replayed = await replay_dead(client, keys, body.ids)
    except (RedisError, OSError) as exc:
        raise StoreUnavailableError(f"Redis is unavailable: {type(exc).__name__}") from exc
    finally:
        await client.aclose()
    return {"replayed": replayed}


async def _stream(state: ServerState, request: Request) -> tuple[EventKeys, str]:
    url = resolve_redis_url(getattr(request.app.state, "redis_url", None))
    if url is None:
        raise AccordError("the event stream lives in Redis: this server was started without --redis-url")
    store = state.live.store
    if not isinstance(store, SqlKVStore):
        raise AccordError("this server's store keeps no event table")
    return EventKeys.of(await redis_keys_of(store.engine)), url
