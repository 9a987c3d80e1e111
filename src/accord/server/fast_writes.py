"""The hottest write, ``PUT /api/config/{path}`` with ``{"value": ..., "expect_version": ...}``, before FastAPI.

As for the reads (``fast_reads.py``), most of a PUT's server CPU under FastAPI was its per-request
machinery — dependency solving, body model validation, the exception and exit-stack layers —
around accord's own work: a token lookup, an ACL check, the write and its answer (profiled in
docs/BENCHMARKS.md, "Server"). Here the plain case is answered directly, with the functions the
route uses (``authenticate``, ``require_write``, ``ConfigAdmin.set``) and the same bytes.

Declining is only allowed *before the write starts*: a request this path does not take in full
(a query such as ``?env=`` or ``?wait_applied=``, ``input`` instead of ``value``, another content
type, an unknown token, a mistyped path, a path the token may not write, a body that is not a plain
JSON object) goes on to FastAPI with its body replayed, and FastAPI answers it as it always has. Once
the write has started, this path answers every outcome itself — success, or the error's answer in
the app's one shape (``errors.error_answer``) — because a write whose outcome is unknown (a lost
connection during COMMIT) must never be tried twice. tests/server/test_fast_writes.py checks both
paths answer alike.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter
from pydantic_core import to_json
from starlette.types import Message, Receive, Scope, Send

from accord.core.errors import AccordError, ConflictError
from accord.server.deps import require_write
from accord.server.errors import crash_answer, error_answer
from accord.server.fast_reads import bearer_token
from accord.server.schemas import MAX_INT64
from accord.store.types import WriteContext

if TYPE_CHECKING:
    from accord.server.state import ServerState

ROUTE = "/api/config/{path}"
_PREFIX = "/api/config/"
_KEYS = ({"value"}, {"value", "expect_version"})


class FastWrites:
    """Answers the plain ``PUT /api/config/{path}``, or declines with the receive FastAPI should read from."""

    def __init__(self, served: Counter) -> None:
        self._served = served

    def wants(self, scope: Scope) -> bool:
        path: str = scope["path"]
        return (
            scope["method"] == "PUT"
            and path.startswith(_PREFIX)
            and "/" not in path[len(_PREFIX) :]
            and len(path) > len(_PREFIX)
            and not scope.get("query_string")
        )

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> tuple[str | None, Receive]:
        """(the route template, ...) when answered here; (None, a receive replaying the body) when declined."""
        state: ServerState | None = getattr(getattr(scope.get("app"), "state", None), "accord", None)
        secret = bearer_token(scope)
        if state is None or secret is None or not _is_json(scope):
            return None, receive
        body = await _read_body(receive)
        replay = _replaying(body, receive)
        plan = _plan(state, secret, scope["path"][len(_PREFIX) :], body)
        if plan is None:
            return None, replay
        path, value, expect_version, actor = plan
        request_id: str = scope.get("state", {}).get("request_id", "")
        scope["state"]["actor"] = actor
        self._served.inc()  # from here on this path answers, whatever the outcome
        try:
            row = await state.admin.set(
                path, value, expect_version=expect_version, ctx=WriteContext(actor=actor, request_id=request_id)
            )
        except AccordError as exc:
            if isinstance(exc, ConflictError):
                state.metrics.conflicts.inc()
            await error_answer(exc, request_id)(scope, replay, send)
            return ROUTE, replay
        except Exception as exc:
            await crash_answer(exc, "PUT", scope["path"], request_id)(scope, replay, send)
            return ROUTE, replay
        state.metrics.writes.labels("set").inc()
        answer = to_json(row, inf_nan_mode="null")
        headers = [(b"content-length", str(len(answer)).encode()), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})
        return ROUTE, replay


def _plan(state: ServerState, secret: str, path: str, body: bytes) -> tuple[str, object, int | None, str] | None:
    """(path, value, expect_version, actor) when every check before the write passes, else None (decline)."""
    caller = state.tokens.authenticate(secret)
    if caller is None:
        return None
    try:
        document: Any = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or set(document) not in _KEYS:
        return None
    expect = document.get("expect_version")
    if expect is not None and (type(expect) is not int or not 0 <= expect <= MAX_INT64):
        return None
    try:
        key = state.live.spec(path, visible=caller.policy.can_read).key
        require_write(caller, key)
    except AccordError:
        return None  # FastAPI gives the error its documented answer
    return path, document["value"], expect, caller.name


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bytes(value).split(b";", 1)[0].strip().lower() == b"application/json"
    return False


async def _read_body(receive: Receive) -> bytes:
    """The whole body (the middleware's receive already refuses one over the size limit)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that gives ``body`` once, then whatever the connection says next (a disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
