"""/api/watch: Server-Sent Events of setting changes, resumable by revision (Last-Event-ID).

A stream outlives the request that authenticated it, so it re-checks its token every
``RECHECK_S`` and ends once the token is revoked or expired.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from accord.auth.tokens import Token
from accord.config.history_pages import changes_after
from accord.config.values import SettingChange
from accord.core.errors import AccordError
from accord.server.deps import Caller, State
from accord.server.schemas import ERROR_RESPONSES, MAX_INT64

log = logging.getLogger("accord.server")
router = APIRouter(prefix="/api", tags=["watch"], responses=ERROR_RESPONSES)
KEEPALIVE_S = 15.0
RECHECK_S = 0.25
QUEUE_LIMIT = 10_000


@router.get(
    "/watch",
    summary="Stream setting changes as Server-Sent Events; resume with ?from_revision= or Last-Event-ID",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def watch(
    state: State,
    caller: Caller,
    from_revision: Annotated[
        int | None, Query(ge=0, le=MAX_INT64, description="Replay changes after this revision first.")
    ] = None,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_INT64)] = None,
) -> StreamingResponse:
    start = last_event_id if last_event_id is not None else from_revision
    queue: asyncio.Queue[SettingChange | None] = asyncio.Queue(QUEUE_LIMIT)

    def enqueue(change: SettingChange) -> None:
        if queue.full():
            queue.get_nowait()
            queue.put_nowait(None)  # the client fell behind: end the stream so it resumes by revision
        else:
            queue.put_nowait(change)

    unsubscribe = state.live.on_change("", enqueue)
    try:
        if start is not None:
            await state.live.store.changes_since(start, limit=1)  # a compacted start fails here, before the 200
    except BaseException:
        unsubscribe()
        raise
    return StreamingResponse(
        _stream(state, caller, start, queue, unsubscribe),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(
    state: State,
    caller: Token,
    start: int | None,
    queue: asyncio.Queue[SettingChange | None],
    unsubscribe: Any,
) -> AsyncIterator[bytes]:
    try:
        yield b"retry: 1000\n\n"
        last = state.live.last_revision if start is None else start
        if start is not None:
            async for change in changes_after(state.live.store, start):
                row = state.admin.change_event(change)
                last = change.revision
                if row is not None and caller.policy.can_read(change.key):
                    yield _event(change.revision, row)
        async for chunk in _live(state, caller, queue, last):
            yield chunk
    except AccordError as exc:  # a replay page the store could not read: the client resumes by Last-Event-ID
        log.warning("watch stream ended: %s", exc.detail)
    finally:
        unsubscribe()


async def _live(
    state: State, caller: Token, queue: asyncio.Queue[SettingChange | None], last: int
) -> AsyncIterator[bytes]:
    """Changes as they come, after ``last``; ends when the client falls behind or the token is revoked."""
    idle = 0.0
    while state.tokens.still_valid(caller) and not state.stopping:  # both re-checked every RECHECK_S
        try:
            change = await asyncio.wait_for(queue.get(), RECHECK_S)
        except TimeoutError:
            idle += RECHECK_S
            if idle >= KEEPALIVE_S:
                idle = 0.0
                yield b": keepalive\n\n"
            continue
        if change is None or not state.tokens.still_valid(caller):
            return
        spec = state.live.spec(change.path)
        if change.revision <= last or not caller.policy.can_read(spec.key):
            continue
        last = change.revision
        yield _event(change.revision, state.admin.setting_change_event(change))


def _event(revision: int, row: dict[str, Any]) -> bytes:
    data = json.dumps(row, ensure_ascii=False, default=str)
    return f"id: {revision}\nevent: {row['op']}\ndata: {data}\n\n".encode()
