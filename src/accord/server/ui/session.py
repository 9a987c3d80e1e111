"""The UI's browser session: the token in an HttpOnly SameSite=Strict cookie, and a CSRF header derived from it.

Stateless on purpose: any server process (``--workers``, replicas) recomputes the CSRF value from the
cookie, and every request authenticates the cookie's token afresh, so revoking a token ends its
sessions everywhere at once. docs/ui.md describes the design.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

from accord.core.errors import PermissionDeniedError

COOKIE = "accord_session"
CSRF_HEADER = "x-accord-csrf"
_CSRF_CONTEXT = b"accord-ui-csrf/v1"


def csrf_for(secret: str) -> str:
    """The CSRF value of a session: an HMAC of a fixed context under the token, so it reveals nothing of it."""
    return hmac.new(secret.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def session_secret(request: Request) -> str | None:
    """The token of the request's UI session, once its CSRF header is checked; None without a session cookie.

    Every request the cookie authenticates needs the header, reads included: it is one rule, and a
    cross-site page can send neither the cookie (SameSite=Strict) nor the header (no CORS).
    """
    secret = request.cookies.get(COOKIE)
    if not secret:
        return None
    presented = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(presented.encode(), csrf_for(secret).encode()):
        raise PermissionDeniedError(
            "a request with the UI session cookie needs its CSRF token in the X-Accord-CSRF header"
        )
    return secret
