"""``/v1/agent/check/pass|warn|fail|update/<id>``: the heartbeat of TTL checks (logic in registry/checkstate.py)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from accord.core.errors import ConsulApiError
from accord.registry.checkstate import check_key, find_check, record_ttl
from accord.server.consul.state import ConsulState
from accord.server.consul.wire import check_dc, consul_caller, empty_ok, require

__all__ = ["routes"]

_VERBS = {"pass": "passing", "warn": "warning", "fail": "critical"}


async def _update(request: Request) -> Response:
    check_id = request.path_params["check_id"]
    raw = await request.body()
    body: Any = {}
    if raw.strip():
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ConsulApiError(400, f"Request decode failed: {exc}") from None
    if not isinstance(body, dict):
        raise ConsulApiError(400, "Request decode failed: json: cannot unmarshal into Go value of type struct")
    fields = {str(k).lower(): v for k, v in body.items()}
    status, output = fields.get("status", ""), fields.get("output", "")
    if not isinstance(status, str):
        raise ConsulApiError(400, f"Invalid check status: '{status}'")
    return await _record(request, check_id, status, output if isinstance(output, str) else str(output))


async def _record(request: Request, check_id: str, status: str, output: str) -> Response:
    check_dc(request)
    state = _state(request)
    token = consul_caller(request, request.app.state.accord.tokens)
    check = find_check(state.replica, check_id)
    require(token, check.key if check is not None else check_key(check_id), "write", resource=f'check "{check_id}"')
    await record_ttl(state.replica, state.timers, check_id, status, output)
    return empty_ok()


def _state(request: Request) -> ConsulState:
    state: ConsulState = request.app.state.consul  # not router.consul_state: the router imports this module
    return state


def routes() -> list[BaseRoute]:
    """Explicit verbs (no ``{verb}`` pattern), so the catalog's register/deregister routes are never shadowed."""
    verbs = [
        Route(f"/v1/agent/check/{verb}/{{check_id:path}}", _verb_route(verb), methods=["PUT", "GET"]) for verb in _VERBS
    ]
    return [*verbs, Route("/v1/agent/check/update/{check_id:path}", _update, methods=["PUT"])]


def _verb_route(verb: str) -> Callable[[Request], Awaitable[Response]]:
    status = _VERBS[verb]

    async def endpoint(request: Request) -> Response:
        note = request.query_params.get("note", "")
        return await _record(request, request.path_params["check_id"], status, note)

    return endpoint
