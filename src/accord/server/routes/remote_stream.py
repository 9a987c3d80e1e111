"""/api/remote/stream: every remote client's one change stream, fanned out from this server's one replica.

The replica's changes go into one bounded queue per stream; a stream that falls behind its queue is
cleared and told to resync (its client catches up from /api/remote/changes), so a slow client never
blocks the replica or the other streams. Each event names the revision of the one before it on the
stream, so the client can tell "nothing you see happened in between" from a gap (docs/remote.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections import deque
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from starlette.types import Receive, Scope, Send

from accord.auth.tokens import Token
from accord.config.history_pages import changes_after
from accord.config.live import LiveConfig
from accord.core.errors import AccordError, InvalidInputError
from accord.remote.wire import change_to_json
from accord.server.deps import Caller, State
from accord.server.direct_body import DirectBody, direct_body
from accord.server.routes.remote_view import RemoteView
from accord.server.schemas import ERROR_RESPONSES, MAX_INT64
from accord.server.state import ServerState
from accord.store.types import Change

router = APIRouter(prefix="/api/remote", tags=["remote"], responses=ERROR_RESPONSES)
QUEUE_LIMIT = 1000
TICK_S = 2.0  # how often idle streams are told how far the revision moved (it carries no data)
KEEPALIVE_S = 15.0  # also how often an idle stream re-checks its token (a revocation is a change: it wakes all)
Item = tuple[int, Change]  # (the revision of the fan-out's previous change, the change)


class Subscriber:
    """One stream's queue. ``offer`` runs inside the replica's apply: it writes the change to the stream's
    connection at once when the stream can take it (``direct``), else it only appends and wakes the stream.

    The stream's task waits on a bare future, not an Event under a timeout: a change wakes hundreds of
    streams at once, and each wait costs the same again in timer handling (docs/remote.md, "Fan-out").
    The fan-out's ticker marks a stream that sent nothing for KEEPALIVE_S, so it sends a keepalive.
    """

    def __init__(self, prefixes: tuple[str, ...], limit: int, position: int) -> None:
        self.prefixes = prefixes
        self.items: deque[Item] = deque()
        self.limit = limit
        self.offered = position  # every change up to here that this stream wants has been offered
        self.resync: str | None = None
        self.idle_s = 0.0  # seconds since the stream last sent something, as the ticker counts them
        self.told = position  # the last revision the stream has sent its client (the ticker wakes it when behind)
        self.keepalive = False
        self.closed = False  # the client went away
        # set by a stream that writes its connection directly: sends an item now, or False to queue it
        self.direct: Callable[[Item], bool] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, change: Change) -> bool:
        """Queue the change and wake the stream; True when it was handed to the stream's connection at once."""
        item = (self.offered, change)
        self.offered = change.revision
        if self.resync is not None:
            return False
        if self.direct is not None and self._waiter is not None and not self.items and self.direct(item):
            return True  # the stream's task is parked with nothing queued: written now, in order, without waking it
        if len(self.items) >= self.limit:
            self.ask_resync(f"this client fell more than {self.limit} changes behind")
            return False
        self.items.append(item)
        self.wake()
        return False

    def ask_resync(self, reason: str) -> None:
        self.items.clear()
        self.resync = reason
        self.wake()

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Until the next offer, resync, tick that matters, close or stop."""
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


class FanOut:
    """Subscribed once to the server's replica; hands each applied change to the streams whose prefixes it is under.

    A stream is not woken for changes it does not want; one ticker wakes every stream whose client has
    not been told the current revision, so idle clients learn how far (a ``skip``) without a timer per
    stream (and re-check their token: a revocation is a write, so it moves the revision past them).
    """

    def __init__(self, live: LiveConfig) -> None:
        self.subscribers: set[Subscriber] = set()
        self.offered = 0  # changes handed to streams, and how many of those went to their connection at once
        self.written_at_once = 0
        self._live = live
        live.replica.on_change(self._changed)
        live.replica.on_reload(self._reloaded)
        self._ticker = asyncio.create_task(self._tick(), name="accord-remote-fan-out-tick")

    def subscribe(self, prefixes: tuple[str, ...], limit: int = QUEUE_LIMIT) -> Subscriber:
        subscriber = Subscriber(prefixes, limit, self._live.last_revision)
        self.subscribers.add(subscriber)
        return subscriber

    def wake_all(self) -> None:
        """Every stream looks at its state now (the server is stopping: each one ends)."""
        for subscriber in self.subscribers:
            subscriber.wake()

    def _changed(self, change: Change) -> None:
        offered = at_once = 0
        for subscriber in self.subscribers:
            if change.key.startswith(subscriber.prefixes):
                offered += 1
                at_once += subscriber.offer(change)
        self.offered += offered
        self.written_at_once += at_once

    def _reloaded(self, _revision: int, _fire: bool) -> None:
        for subscriber in self.subscribers:
            subscriber.ask_resync("the server reloaded its replica")

    async def aclose(self) -> None:
        self._ticker.cancel()
        await asyncio.wait({self._ticker})

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            revision = self._live.last_revision
            for subscriber in self.subscribers:
                subscriber.idle_s += TICK_S
                if subscriber.idle_s >= KEEPALIVE_S:
                    subscriber.keepalive = True
                if subscriber.told < revision or subscriber.keepalive:  # a stream told everything has nothing to say
                    subscriber.wake()


class FanOutCollector(Collector):
    """How the fan-out handed changes to streams, read at scrape time (this worker's streams)."""

    def __init__(self, hub: FanOut) -> None:
        self._hub = hub

    def collect(self) -> Iterator[CounterMetricFamily]:
        found = CounterMetricFamily(
            "accord_remote_stream_changes",
            "Changes handed to remote clients' streams: written to the connection at once, or queued for its task",
            labels=["path"],
        )
        found.add_metric(["at_once"], self._hub.written_at_once)
        found.add_metric(["queued"], self._hub.offered - self._hub.written_at_once)
        yield found


def fan_out(request: Request, state: ServerState) -> FanOut:
    """The app's one FanOut, made on the first stream (it lives as long as the app)."""
    found: FanOut | None = getattr(request.app.state, "remote_fan_out", None)
    if found is None:
        found = request.app.state.remote_fan_out = FanOut(state.live)
        state.metrics.watch(FanOutCollector(found))
    return found


@router.get(
    "/stream",
    summary="The change stream of a remote client, resumable by revision (docs/remote.md)",
    response_class=Response,
    include_in_schema=False,  # an endless client protocol stream (docs/remote.md), not an API to explore
)
async def stream(
    state: State,
    caller: Caller,
    request: Request,
    from_revision: Annotated[int, Query(ge=0, le=MAX_INT64)],
    prefix: Annotated[list[str] | None, Query()] = None,
) -> Response:
    wanted = tuple(prefix or ())
    uncovered = [p for p in wanted if not state.live.replica.covers(p)]
    if uncovered or not wanted:
        raise InvalidInputError(f"this server's replica does not hold the prefixes {uncovered or ['(all keys)']}")
    view = RemoteView.of(request, state.live, caller, wanted)
    hub = fan_out(request, state)
    subscriber = hub.subscribe(wanted)
    try:
        if from_revision < state.live.last_revision:
            await state.live.store.changes_since(from_revision, limit=1)  # a compacted start fails before the 200
    except BaseException:
        hub.subscribers.discard(subscriber)
        raise
    return _EventStreamResponse(_Stream(state, caller, view, subscriber, from_revision), hub)


class _EventStreamResponse(Response):
    """An endless ``text/event-stream`` written with the ASGI ``send`` it is given (and live changes with the
    request's DirectBody, when the server hands one: server/direct_body.py).

    Not a StreamingResponse: each event of a change goes to hundreds of streams at once, and an async
    generator per stream (with an anyio task group around it) doubled the server's CPU per event.
    The client's going away is noticed by one task waiting on ``receive``.
    """

    media_type = "text/event-stream"

    def __init__(self, stream: _Stream, hub: FanOut) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._stream = stream
        self._hub = hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        subscriber = self._stream.subscriber
        watcher = asyncio.create_task(_until_disconnect(receive, subscriber), name="accord-remote-stream-watch")
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            with contextlib.suppress(AccordError):  # a replay page the store could not read: the client resumes
                await self._stream.run(send, direct_body(scope))
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            subscriber.direct = None
            self._hub.subscribers.discard(subscriber)
            watcher.cancel()


async def _until_disconnect(receive: Receive, subscriber: Subscriber) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    subscriber.closed = True
    subscriber.wake()


class _Cursor:
    """Where a stream is: ``told`` the last revision sent, ``clear`` the last one known sent or not visible."""

    def __init__(self, view: RemoteView, start: int) -> None:
        self.view = view
        self.told = self.clear = start

    def change(self, change: Change) -> bytes | None:
        self.clear = max(self.clear, change.revision)
        shown = self.view.change(change)
        if shown is None:
            return None
        if shown is change:
            event = _SHARED.event(self.told, change)
        else:  # resealed: this token's own
            event = _change_event(self.told, shown, _json(change_to_json(shown)))
        self.told = shown.revision
        return event

    def skip(self, upto: int) -> bytes | None:
        self.clear = max(self.clear, upto)
        if self.clear <= self.told:
            return None
        event = _event("skip", self.clear, {"after": self.told, "revision": self.clear})
        self.told = self.clear
        return event

    def resync(self, reason: str, upto: int) -> bytes:
        event = _event("resync", self.clear, {"reason": reason})
        self.told = self.clear = max(self.clear, upto)
        return event


class _Stream:
    """What one stream sends: hello, the replay from the client's revision, then the fan-out's changes."""

    def __init__(self, state: ServerState, caller: Token, view: RemoteView, subscriber: Subscriber, start: int) -> None:
        self.state = state
        self.caller = caller
        self.subscriber = subscriber
        self.cursor = _Cursor(view, start)
        subscriber.told = start
        self.start = start
        self.body: DirectBody

    async def run(self, send: Send, body: DirectBody | None = None) -> None:
        state, subscriber, cursor = self.state, self.subscriber, self.cursor

        async def out(events: list[bytes]) -> None:
            subscriber.idle_s, subscriber.told = 0.0, cursor.told
            await send({"type": "http.response.body", "body": b"".join(events), "more_body": True})

        await out([_event("hello", state.live.last_revision, {"revision": state.live.last_revision, "server": _HOST})])
        if self.start < state.live.last_revision:
            async for change in changes_after(state.live.store, self.start):
                if (event := cursor.change(change)) is not None:
                    await out([event])
        if body is not None:
            self.body = body
            subscriber.direct = self._write_now  # from here on, live changes may skip the task
        while self._open():
            if events := self._pending():
                await out(events)
            else:
                await subscriber.wait()

    def _open(self) -> bool:
        return self.state.tokens.still_valid(self.caller) and not self.state.stopping and not self.subscriber.closed

    def _write_now(self, item: Item) -> bool:
        """Write a live change to the connection now (the fan-out calls this); False: queue it for the task.

        Only while the task is parked with nothing queued (so nothing can come between), the connection
        takes data without waiting, and the stream is still open (a revoked token gets nothing more).
        """
        if not self.body.writable() or not self._open():
            return False
        if events := _next(self.cursor, item):
            self.body.write(b"".join(events))
            self.subscriber.idle_s, self.subscriber.told = 0.0, self.cursor.told
        return True

    def _pending(self) -> list[bytes]:
        """The events to send now; none when the stream should wait."""
        subscriber, cursor = self.subscriber, self.cursor
        events: list[bytes] = []
        if subscriber.resync is not None:
            reason, subscriber.resync = subscriber.resync, None
            events.append(cursor.resync(reason, self.state.live.last_revision))
        elif subscriber.items:
            while subscriber.items:  # everything queued goes in one write
                events += _next(cursor, subscriber.items.popleft())
        else:
            # the queue is empty: every change up to the replica's revision has been offered
            if (event := cursor.skip(self.state.live.last_revision)) is not None:
                events.append(event)
            elif subscriber.keepalive:
                events.append(b": keepalive\n\n")
            subscriber.keepalive = False
        return events


def _next(cursor: _Cursor, item: Item) -> list[bytes]:
    prev, change = item
    if change.revision <= cursor.clear:
        return []
    events = []
    if prev > cursor.clear:  # revisions this stream never saw: let the client catch up from history
        events.append(cursor.resync("the stream missed revisions", prev))
    if (event := cursor.change(change)) is not None:
        events.append(event)
    return events


def _event(name: str, revision: int, body: dict[str, Any]) -> bytes:
    return f"id: {revision}\nevent: {name}\ndata: {_json(body)}\n\n".encode()


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _change_event(after: int, change: Change, body: str) -> bytes:
    return f'id: {change.revision}\nevent: change\ndata: {{"after":{after},"change":{body}}}\n\n'.encode()


class _SharedEvents:
    """The latest change's events as every stream that shows it unchanged sends it: built once, not per stream.

    Streams differ only in ``after`` (which revisions they saw before), so there are few variants. Keyed by
    the change object itself, which the fan-out hands to every stream (hashing a Change would cost more).
    """

    def __init__(self) -> None:
        self._change: Change | None = None
        self._body = ""
        self._events: dict[int, bytes] = {}

    def event(self, after: int, change: Change) -> bytes:
        if change is not self._change:
            self._change, self._body, self._events = change, _json(change_to_json(change)), {}
        found = self._events.get(after)
        if found is None:
            found = self._events[after] = _change_event(after, change, self._body)
        return found


_SHARED = _SharedEvents()


_HOST = socket.gethostname()
