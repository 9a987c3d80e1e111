"""Request dependencies: the server state, the calling token, the write context.

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread,
which costs more than the work these do (a dict lookup) on every request.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Depends, Request

from accord.auth.tokens import Token
from accord.core.errors import AuthenticationError, PermissionDeniedError
from accord.core.keys import key_to_path
from accord.server.state import ServerState
from accord.server.ui.session import session_secret
from accord.store.types import WriteContext


async def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.accord
    return state


State = Annotated[ServerState, Depends(get_state)]


def presented_token(request: Request) -> str | None:
    """``Authorization: Bearer <token>``, else ``X-Consul-Token`` (so Consul clients work)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-consul-token") or None


async def get_caller(request: Request) -> Token:
    """The calling token: a bearer token first, else the UI's session cookie (with its CSRF header)."""
    secret = presented_token(request) or session_secret(request)
    if secret is None:
        raise AuthenticationError("a token is required: send 'Authorization: Bearer <token>' or 'X-Consul-Token'")
    state: ServerState = request.app.state.accord  # not a sub-dependency: each level costs FastAPI a solve per request
    token = state.tokens.authenticate(secret)
    if token is None:
        raise AuthenticationError("the token is unknown, revoked or expired")
    request.state.actor = token.name
    return token


Caller = Annotated[Token, Depends(get_caller)]


async def write_context(request: Request, caller: Caller) -> WriteContext:
    return WriteContext(actor=caller.name, request_id=getattr(request.state, "request_id", None))


Context = Annotated[WriteContext, Depends(write_context)]


def require_read(caller: Token, key: str) -> None:
    if not caller.policy.can_read(key):
        raise PermissionDeniedError(f"token {json.dumps(caller.name)} may not read {_named(key)}")


def require_write(caller: Token, key: str) -> None:
    if not caller.policy.can_write(key):
        raise PermissionDeniedError(f"token {json.dumps(caller.name)} may not write {_named(key)}")


def require_reveal(caller: Token, key: str) -> None:
    if not caller.policy.can_reveal(key):
        raise PermissionDeniedError(f"token {json.dumps(caller.name)} may not reveal secrets under {_named(key)}")


def _named(key: str) -> str:
    """A setting by its dotted path, with the store key its token rules are written against."""
    path = key_to_path(key)
    return f"{path} (store key {json.dumps(key)})" if path else json.dumps(key)
