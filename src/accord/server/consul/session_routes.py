"""``/v1/session/...``: Consul sessions over ``registry/sessions.py`` (reference §2.5)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from accord.auth.tokens import Token
from accord.core import environ
from accord.core.errors import ConsulApiError
from accord.registry.sessions import SESSION_PREFIX, parse_create, session_key
from accord.server.consul.kv_routes import read_body, with_allowed, write_context
from accord.server.consul.state import ConsulState
from accord.server.consul.wire import (
    check_consistency,
    check_dc,
    consul_caller,
    json_bool,
    json_response,
    query_index,
    query_wait,
    require,
    text_error,
)

__all__ = ["session_routes"]


def _state(request: Request) -> ConsulState:
    state: ConsulState = request.app.state.consul
    return state


def _caller(request: Request, access: str) -> Token:
    token = consul_caller(request, request.app.state.accord.tokens)
    require(token, SESSION_PREFIX, "write" if access == "write" else "read", resource="session")
    return token


def _session_id(request: Request) -> str:
    session_id: str = request.path_params["id"]
    if session_id == "":
        raise ConsulApiError(400, "Missing session")
    return session_id


async def create(request: Request) -> Response:
    check_dc(request)
    token = _caller(request, "write")
    state = _state(request)
    raw = await read_body(request, limit=64 * 1024)
    body: Any = None
    if raw.strip():
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ConsulApiError(400, f"Request decode failed: {exc}") from None
    session = parse_create(body, node=environ.current().node_name, check_status=state.sessions.check_status)
    await state.sessions.create(session, ctx=write_context(request, token, "session-create"))
    return json_response({"ID": session.id})


async def destroy(request: Request) -> Response:
    check_dc(request)
    token = _caller(request, "write")
    await _state(request).sessions.destroy(_session_id(request), ctx=write_context(request, token, "session-destroy"))
    return json_bool(True)


async def renew(request: Request) -> Response:
    check_dc(request)
    token = _caller(request, "write")
    session_id = _session_id(request)
    state = _state(request)
    renewed = await state.sessions.renew(session_id, ctx=write_context(request, token, "session-renew"))
    if renewed is None:
        return text_error(404, f"Session id '{session_id}' not found")
    return json_response([renewed.consul_json()], index=state.sessions.index())


async def _blocking(request: Request) -> int:
    check_dc(request)
    check_consistency(request)
    index, wait = query_index(request), query_wait(request)
    _caller(request, "read")
    state = _state(request)
    return await state.signal.wait_beyond(state.sessions.index, index, wait)


async def info(request: Request) -> Response:
    session_id = _session_id(request)
    current = await _blocking(request)
    found = _state(request).replica.entry(session_key(session_id))
    session = _state(request).sessions.get(session_id) if found else None
    return json_response([session.consul_json()] if session else [], index=current)


async def session_list(request: Request) -> Response:
    current = await _blocking(request)
    return json_response([s.consul_json() for s in _state(request).sessions.all()], index=current)


async def node(request: Request) -> Response:
    name: str = request.path_params["node"]
    current = await _blocking(request)
    sessions = [s.consul_json() for s in _state(request).sessions.all() if s.node == name]
    return json_response(sessions, index=current)


def session_routes() -> list[BaseRoute]:
    return [
        *with_allowed("/v1/session/create", {"PUT": create}),
        *with_allowed("/v1/session/destroy/{id:path}", {"PUT": destroy}),
        *with_allowed("/v1/session/renew/{id:path}", {"PUT": renew}),
        *with_allowed("/v1/session/info/{id:path}", {"GET": info}),
        *with_allowed("/v1/session/list", {"GET": session_list}),
        *with_allowed("/v1/session/node/{node:path}", {"GET": node}),
    ]
