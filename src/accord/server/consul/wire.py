"""Consul's HTTP contract, in one place: every /v1 route answers through these helpers.

Clients depend on details that look cosmetic: node-consul decodes a body only when it is labelled
``application/json``; py-consul raises when ``X-Consul-Index`` is missing, also on a 404; the Go
API stops reading meta headers at a missing ``X-Consul-LastContact``; flags are present-or-absent,
whatever their value; errors are plain text that clients match by prefix. See
shared/reference/consul-http-api.md §1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

from accord.auth.policy import Policy
from accord.auth.tokens import Token, TokenIndex
from accord.core import environ
from accord.core.errors import (
    AccordError,
    AuthenticationError,
    ConsulApiError,
    PermissionDeniedError,
    ValidationFailedError,
)
from accord.registry.durations import parse_duration

__all__ = [
    "ANONYMOUS",
    "CONSUL_VERSION",
    "LOCAL_CALLER",
    "check_consistency",
    "check_dc",
    "consul_caller",
    "datacenter",
    "empty_ok",
    "error_response",
    "flag",
    "json_bool",
    "json_response",
    "passing_flag",
    "query_index",
    "query_wait",
    "require",
    "text_error",
    "token_secret",
]

CONSUL_VERSION = "1.22.0"  # clients gate features on it; accord speaks this version's API
ANONYMOUS = "anonymous"  # Consul's anonymous token: its secret, and the accord token name whose rules it carries
LOCAL_CALLER = "accord.local_caller"  # ASGI scope key: the caller of an in-process (embedded) request
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def datacenter() -> str:
    return environ.current().datacenter


def json_response(
    body: Any, *, index: int | None = None, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON answer with Consul's meta headers; ``index`` (never sent as 0) where the query has one."""
    out = dict(headers or {})
    if index is not None:
        out.update(meta_headers(index))
    return Response(json.dumps(body, separators=(",", ":")), status, out, media_type="application/json")


def meta_headers(index: int) -> dict[str, str]:
    return {
        "X-Consul-Index": str(max(1, index)),
        "X-Consul-KnownLeader": "true",
        "X-Consul-LastContact": "0",
        "X-Consul-Effective-Consistency": "leader",
        "X-Consul-Default-ACL-Policy": "deny",
    }


def json_bool(value: bool, *, index: int | None = None) -> Response:
    return json_response(value, index=index)


def empty_ok() -> Response:
    """What Consul's agent answers to register/deregister/pass: 200, no body, no content type."""
    return Response(b"", 200)


def text_error(status: int, text: str) -> Response:
    return Response(text, status, media_type="text/plain; charset=utf-8")


def error_response(exc: AccordError) -> Response:
    """An accord error as Consul words it: plain text, Consul's status."""
    if isinstance(exc, ConsulApiError):
        return text_error(exc.status, exc.detail)
    if isinstance(exc, PermissionDeniedError):
        return text_error(403, f"Permission denied: {exc.detail}")
    if isinstance(exc, AuthenticationError):
        return text_error(403, "ACL not found")
    return text_error(exc.http_status, exc.detail)


# ----- query parameters -------------------------------------------------------------------------


def flag(request: Request, name: str) -> bool:
    """Consul's boolean query flags are presence flags: ``?recurse``, ``?recurse=1``, ``?recurse=false`` mean yes."""
    return name in request.query_params


def passing_flag(request: Request) -> bool:
    """``?passing`` is the exception: empty means true, otherwise Go's ParseBool, else 400."""
    if "passing" not in request.query_params:
        return False
    value = request.query_params["passing"]
    if value == "" or value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConsulApiError(400, "Invalid value for ?passing")


def query_index(request: Request) -> int:
    raw = request.query_params.get("index")
    if raw is None or raw == "":
        return 0
    try:
        index = int(raw)
    except ValueError:
        raise ConsulApiError(400, "Invalid index") from None
    if index < 0:
        raise ConsulApiError(400, "Invalid index")
    return index


def query_wait(request: Request) -> float | None:
    raw = request.query_params.get("wait")
    if raw is None or raw == "":
        return None
    try:
        return parse_duration(raw, what="wait")
    except ValidationFailedError:
        raise ConsulApiError(400, "Invalid wait time") from None


def check_dc(request: Request) -> None:
    """``?dc=`` naming this datacenter is accepted; any other is Consul's 500."""
    dc = request.query_params.get("dc")
    if dc and dc != datacenter():
        raise ConsulApiError(500, "No path to datacenter")


def check_consistency(request: Request) -> None:
    if flag(request, "stale") and flag(request, "consistent"):
        raise ConsulApiError(400, "Cannot specify ?stale with ?consistent, conflicting semantics.")


# ----- tokens -----------------------------------------------------------------------------------


def token_secret(request: Request) -> str | None:
    """The presented secret, first non-empty of ``?token=``, ``X-Consul-Token``, ``Authorization: Bearer``."""
    query = request.query_params.get("token")
    if query:
        return query
    header = request.headers.get("x-consul-token")
    if header:
        return header
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip().split()[0]
    return None


def consul_caller(request: Request, tokens: TokenIndex) -> Token:
    """The calling token; no token (or the literal ``anonymous``) is the anonymous token.

    The anonymous token's rules are those of the accord token named ``anonymous`` when an operator
    created one, and none otherwise — so nothing is open unless someone opened it.
    """
    local = request.scope.get(LOCAL_CALLER)
    if isinstance(local, Token):  # a CLI command running the routes in-process: it already holds the database
        return local
    secret = token_secret(request)
    if secret is None or secret == ANONYMOUS:
        try:
            return tokens.get(ANONYMOUS)
        except AccordError:
            return _NO_RULES
    token = tokens.authenticate(secret)
    if token is None:
        raise ConsulApiError(403, "ACL not found")
    return token


def require(token: Token, store_key: str, access: Literal["read", "write"], *, resource: str = "") -> None:
    """Refuse with Consul's "Permission denied" unless ``token`` may ``access`` ``store_key``."""
    allowed = token.policy.can_read(store_key) if access == "read" else token.policy.can_write(store_key)
    if not allowed:
        what = resource or store_key
        raise ConsulApiError(403, f"Permission denied: token '{token.name}' lacks permission '{access}' on {what}")


def _no_rules() -> Token:
    return Token(ANONYMOUS, "00000000-0000-0000-0000-000000000002", Policy(()), datetime.now(UTC), "accord")


_NO_RULES = _no_rules()
