"""The hottest reads, ``GET /api/config/{path}`` and ``GET /v1/kv/<key>``, answered before FastAPI's routing.

Every pod's start-up and every dashboard poll is this request. Under FastAPI it cost about six times
a bare Starlette route's CPU: most of it was the framework's per-request machinery (dependency
solving, parameter validation, the exception and exit-stack layers), not accord's work, which is a
token lookup, an ACL check and a row from memory. Here the plain case — a bearer or Consul token,
no query but ``reveal`` — is answered directly, with the same functions the FastAPI route uses
(``authenticate``, ``require_read``/``require_reveal``, ``ConfigAdmin.setting_row``) and the same
bytes. Anything else, and every error, *declines*: the request goes on to FastAPI, which answers it
as it always has (error shape, status, ``did you mean``). Declining is always safe because this is
a read with no side effects; tests/server/test_fast_reads.py checks the two paths answer alike.

``GET /v1/kv/<key>`` (a Starlette route already, without dependencies) skips only the routing: the
request goes straight to its endpoint, ``kv_get``; a blocking query (``index=``) and every error
decline the same way, so Consul's own error answers come from the one place that makes them.

A row's bytes are kept until the replica's revision moves (any change), per path and reveal; the
token and its rules are checked on every request before the cache is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter
from pydantic_core import to_json
from starlette.requests import Request
from starlette.types import Message, Scope, Send

from accord.core.errors import AccordError
from accord.server.consul.kv_routes import kv_get
from accord.server.deps import require_read, require_reveal

if TYPE_CHECKING:
    from accord.server.state import ServerState

ROUTE = "/api/config/{path}"
_PREFIX = "/api/config/"
KV_ROUTE = "/v1/kv/{key:path}"
_KV_PREFIX = "/v1/kv/"
_REVEAL = {b"": False, b"reveal=false": False, b"reveal=true": True, b"reveal=False": False, b"reveal=True": True}
_MAX_ROWS = 4096  # paths are checked against declared settings before they are kept; this only bounds the worst case


class FastReads:
    """Answers the plain ``GET /api/config/{path}``, or declines (returns None) so FastAPI answers."""

    def __init__(self, served: Counter) -> None:
        self._rows: dict[tuple[str, bool], bytes] = {}
        self._revision = -1
        self._served = served

    async def serve(self, scope: Scope, send: Send) -> str | None:
        """The route template when answered here, else None (nothing was sent)."""
        raw_path: str = scope["path"]
        if scope["method"] != "GET":
            return None
        if raw_path.startswith(_KV_PREFIX):
            return await self._kv(scope, send)
        if not raw_path.startswith(_PREFIX):
            return None
        path = raw_path[len(_PREFIX) :]
        reveal = _REVEAL.get(scope.get("query_string", b""))
        if reveal is None or not path or "/" in path:
            return None
        app = scope.get("app")
        state: ServerState | None = getattr(getattr(app, "state", None), "accord", None)
        secret = bearer_token(scope)
        if state is None or secret is None:
            return None  # starting up, or no token / a session cookie: FastAPI answers (and refuses) as usual
        body = self._row(state, secret, path, reveal)  # scope's path is already percent-decoded
        if body is None:
            return None
        headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self._served.inc()
        return ROUTE

    async def _kv(self, scope: Scope, send: Send) -> str | None:
        if b"index=" in scope.get("query_string", b"") or getattr(scope.get("app"), "state", None) is None:
            return None  # a blocking query waits: FastAPI's route serves it (and its drain on shutdown)
        key = scope["path"][len(_KV_PREFIX) :]
        scope["path_params"] = {"key": key}  # what the router would set; it sets it again if this declines
        try:
            response = await kv_get(Request(scope))
        except AccordError:  # ConsulApiError included: the routed endpoint answers it as usual
            return None
        await response(scope, _no_body, send)
        self._served.inc()
        return KV_ROUTE

    def _row(self, state: ServerState, secret: str, path: str, reveal: bool) -> bytes | None:
        caller = state.tokens.authenticate(secret)
        if caller is None:
            return None
        try:
            key = state.live.spec(path, visible=caller.policy.can_read).key
            require_read(caller, key)
            if reveal:
                require_reveal(caller, key)
            revision = state.live.last_revision
            if revision != self._revision:
                self._rows.clear()
                self._revision = revision
            body = self._rows.get((path, reveal))
            if body is None:
                body = to_json(state.admin.setting_row(path, reveal=reveal), inf_nan_mode="null")
                if len(self._rows) < _MAX_ROWS:
                    self._rows[(path, reveal)] = body
            return body
        except AccordError:
            return None  # FastAPI gives the error its documented answer


def bearer_token(scope: Scope) -> str | None:
    """What deps.presented_token reads: ``Authorization: Bearer``, else ``X-Consul-Token``."""
    consul: str | None = None
    name: bytes
    value: bytes
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None  # another scheme: let FastAPI decide (it falls back to X-Consul-Token the same way)
        if name == b"x-consul-token" and consul is None:
            consul = value.decode("latin-1") or None
    return consul


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}
