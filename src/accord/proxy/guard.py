"""Who may use the proxy, and what its logs never show.

Authentication is off by default (the proxy listens on 127.0.0.1). With it on, a caller presents an
accord token in ``X-Accord-Token`` (or ``Proxy-Authorization: Bearer ...``), never in
``Authorization``, which carries the model API's own key on to the upstream. The token needs write
access to ``vault/<scope>/``, since masking creates mappings there.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request

from accord.auth.tokens import TokenIndex
from accord.config.live import LiveConfig
from accord.core.errors import AuthenticationError, PermissionDeniedError

TOKEN_HEADER = "x-accord-token"


class ProxyAuth:
    """Accord tokens, from a live replica of acl/ (a revoked token is refused within moments)."""

    def __init__(self, live: LiveConfig, scope: str) -> None:
        self._live = live
        self._tokens = TokenIndex(live.replica)
        self.key = f"vault/{scope}/"

    @classmethod
    async def open(cls, db_url: str | None, redis_url: str | None, scope: str) -> ProxyAuth:
        from accord.config.connect import connect

        live = await connect(db_url, redis_url, actor="accord proxy", extra_prefixes=("acl/",), use_env=False)
        return cls(live, scope)

    def check(self, request: Request) -> None:
        """Raise (a 401 or 403 in the caller's dialect) unless the request carries a token allowed here."""
        secret = presented(request)
        if secret is None:
            raise AuthenticationError(
                "this proxy needs an accord token: send 'X-Accord-Token: <token>' (the Authorization header "
                "goes on to the model API)"
            )
        token = self._tokens.authenticate(secret)
        if token is None:
            raise AuthenticationError("the accord token is unknown, revoked or expired")
        if not token.policy.can_write(self.key):
            raise PermissionDeniedError(
                f"token {json.dumps(token.name)} may not mask through this proxy: it needs a rule granting write on "
                f"{json.dumps(self.key)} (e.g. vault/=write)"
            )

    async def aclose(self) -> None:
        await self._live.aclose()


def presented(request: Request) -> str | None:
    value = request.headers.get(TOKEN_HEADER, "").strip()
    if value:
        return value
    scheme, _, rest = request.headers.get("proxy-authorization", "").partition(" ")
    return rest.strip() if scheme.lower() == "bearer" and rest.strip() else None


class _RedactQuery(logging.Filter):
    """Drops query strings from URLs in log records: some model APIs take their key as ``?key=``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        return True


def _redacted(arg: Any) -> Any:
    text = str(arg) if not isinstance(arg, int | float) else arg
    if isinstance(text, str) and "?" in text and ("/" in text or "=" in text):
        return text.split("?", 1)[0] + "?<redacted>"
    return arg


def redact_query_strings() -> None:
    """On the loggers that print request URLs: uvicorn's access log and httpx's request log."""
    for name in ("uvicorn.access", "httpx"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactQuery) for f in logger.filters):
            logger.addFilter(_RedactQuery())
