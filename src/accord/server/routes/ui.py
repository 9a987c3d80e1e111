"""/ui/: the admin web UI's page, its static files and its session (sign in, who am I, sign out).

The page's data all comes from the ordinary /api routes, called with the session cookie and the CSRF
header (deps.get_caller), so the UI has exactly the API's ACL. docs/ui.md describes the design.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from accord.auth.tokens import Token
from accord.core.errors import AuthenticationError, InvalidInputError, NotFoundError, PermissionDeniedError
from accord.registry.fleet import FLEET_ACL_KEY
from accord.server.deps import State
from accord.server.routes.events import EVENTS_ACL_KEY
from accord.server.routes.tokens import ACL_KEY
from accord.server.routes.vault_stats import VAULT_ACL_KEY
from accord.server.ui.session import COOKIE, csrf_for

router = APIRouter(include_in_schema=False)
MAX_SESSION_S = 12 * 3600
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_STATIC = {  # a fixed list: nothing else of the package (or the disk) is reachable
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=512)


def _asset(name: str) -> bytes:
    return files("accord.server.ui").joinpath("static", name).read_bytes()


def _secured(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


@router.get("/")
async def root() -> Response:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui")
async def ui_no_slash() -> Response:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui/")
async def page() -> Response:
    return _secured(Response(_asset("index.html"), media_type="text/html; charset=utf-8"))


@router.get("/ui/static/{name}")
async def static(name: str) -> Response:
    if name not in _STATIC:
        raise NotFoundError(f"no UI asset {json.dumps(name)}")
    return _secured(Response(_asset(name), media_type=_STATIC[name]))


@router.post("/ui/session")
async def sign_in(state: State, request: Request, body: Annotated[SessionIn, Body()]) -> Response:
    """Check the token as every API request does; only then set the cookie. JSON only, same origin only."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise InvalidInputError('sign in with a JSON body {"token": ...} (Content-Type: application/json)')
    _same_origin(request)
    token = state.tokens.authenticate(body.token.strip())
    if token is None:
        raise AuthenticationError("the token is unknown, revoked or expired")
    request.state.actor = token.name
    response = JSONResponse(_who(state, token, body.token.strip()))
    response.set_cookie(
        COOKIE,
        body.token.strip(),
        max_age=_lifetime(token),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return _secured(response)


@router.get("/ui/session")
async def whoami(state: State, request: Request) -> Response:
    """The signed-in token's name, its CSRF value and what it may write; the page asks once it loads."""
    secret = request.cookies.get(COOKIE)
    token = state.tokens.authenticate(secret) if secret else None
    if secret is None or token is None:
        raise AuthenticationError("not signed in (or the token was revoked or has expired)")
    return _secured(JSONResponse(_who(state, token, secret)))


@router.delete("/ui/session")
async def sign_out() -> Response:
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return _secured(response)


def _who(state: State, token: Token, secret: str) -> dict[str, Any]:
    """What the page needs to draw itself; writability is the server's decision, never the page's."""
    writable: list[str] = []
    revealable: list[str] = []
    for row in state.admin.settings(readable=token.policy.can_read):
        key = state.live.spec(row["path"]).key
        if token.policy.can_write(key):
            writable.append(row["path"])
        if row["secret"] and token.policy.can_reveal(key):
            revealable.append(row["path"])
    expires = token.expires_at.isoformat() if token.expires_at else None
    return {
        "name": token.name,
        "csrf": csrf_for(secret),
        "writable": writable,
        "revealable": revealable,
        "can": {name: check(key) for name, (check, key) in _views(token).items()},
        "expires_at": expires,
    }


def _views(token: Token) -> dict[str, tuple[Callable[[str], bool], str]]:
    """Which views the page offers: each is the API's own rule on the key its route checks."""
    policy = token.policy
    return {
        "tokens": (policy.can_read, ACL_KEY),
        "tokens_write": (policy.can_write, ACL_KEY),
        "fleet": (policy.can_read, FLEET_ACL_KEY),
        "events": (policy.can_read, EVENTS_ACL_KEY),
        "events_write": (policy.can_write, EVENTS_ACL_KEY),
        "vault": (policy.can_read, VAULT_ACL_KEY),
    }


def _lifetime(token: Token) -> int:
    if token.expires_at is None:
        return MAX_SESSION_S
    left = int((token.expires_at - datetime.now(UTC)).total_seconds())
    return max(1, min(MAX_SESSION_S, left))


def _same_origin(request: Request) -> None:
    """Refuse a sign-in posted from another site's page (login CSRF); no Origin header: not a browser page."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host", "")
    if origin.split("://", 1)[-1].rstrip("/") != host:
        raise PermissionDeniedError(f"sign-in from another origin ({json.dumps(origin)}) is refused")
