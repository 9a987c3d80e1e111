"""``WideEventMiddleware``: one event per HTTP request, as pure ASGI (no BaseHTTPMiddleware).

BaseHTTPMiddleware runs the app in a separate task behind a memory stream, which costs every request
and breaks contextvars set by the app; a plain ASGI wrapper only watches ``send`` for the status.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from accord.events.context import RequestState, enter, leave

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    from accord.events.pipeline import Pipeline

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["WideEventMiddleware"]

_HEADER = b"x-request-id"
_MAX_ID = 128
_ERROR_CHARS = 500


def request_id_of(scope: Scope) -> str:
    """The caller's X-Request-ID when it is 1-128 visible ASCII characters, else 32 random hex characters."""
    for name, value in scope.get("headers") or ():
        if name == _HEADER:
            if 0 < len(value) <= _MAX_ID and all(33 <= b <= 126 for b in value):
                return str(value.decode("ascii"))
            break
    return os.urandom(16).hex()


class WideEventMiddleware:
    def __init__(self, app: ASGIApp, *, pipeline: Pipeline) -> None:
        self.app = app
        self.pipeline = pipeline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        event: dict[str, Any] = {"request_id": request_id, "method": scope.get("method", "")}
        state = RequestState(event, self.pipeline)
        status = [500]
        header = (_HEADER, request_id.encode("ascii"))

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = enter(state)
        try:
            await self.app(scope, receive, send_status)
        except Exception as exc:
            event["error_type"] = type(exc).__name__
            event["error_message"] = str(exc)[:_ERROR_CHARS]
            raise
        finally:
            leave(token)
            route = scope.get("route")
            event["route"] = getattr(route, "path", None) or "<unmatched>"
            event["status"] = status[0]
            event["duration_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
            event.setdefault("error_type", None)
            event.setdefault("error_message", None)
            self.pipeline.finish_request(state)
