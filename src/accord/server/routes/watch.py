"""/api/watch: Server-Sent Events of setting changes, resumable by revision (Last-Event-ID)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from accord.auth.tokens import Token
from accord.config.values import SettingChange
from accord.server.deps import Caller, State
from accord.server.schemas import ERROR_RESPONSES, MAX_INT64

router = APIRouter(prefix="/api", tags=["watch"], responses=ERROR_RESPONSES)
KEEPALIVE_S = 15.0
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
        backlog = await _backlog(state, caller, start) if start is not None else []
    except BaseException:
        unsubscribe()
        raise
    last = backlog[-1][0] if backlog else (start if start is not None else state.live.last_revision)
    return StreamingResponse(
        _stream(state, caller, backlog, queue, last, unsubscribe),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _backlog(state: State, caller: Token, start: int) -> list[tuple[int, dict[str, Any]]]:
    events = []
    for change in await state.live.store.changes_since(start):
        row = state.admin.change_event(change)
        if row is not None and caller.policy.can_read(change.key):
            events.append((change.revision, row))
    return events


async def _stream(
    state: State,
    caller: Token,
    backlog: list[tuple[int, dict[str, Any]]],
    queue: asyncio.Queue[SettingChange | None],
    last: int,
    unsubscribe: Any,
) -> AsyncIterator[bytes]:
    try:
        yield b"retry: 1000\n\n"
        for revision, row in backlog:
            yield _event(revision, row)
        while True:
            try:
                change = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            if change is None:
                return
            spec = state.live.spec(change.path)
            if change.revision <= last or not caller.policy.can_read(spec.key):
                continue
            last = change.revision
            yield _event(change.revision, state.admin.setting_change_event(change))
    finally:
        unsubscribe()


def _event(revision: int, row: dict[str, Any]) -> bytes:
    data = json.dumps(row, ensure_ascii=False, default=str)
    return f"id: {revision}\nevent: {row['op']}\ndata: {data}\n\n".encode()
