"""The proxy as an ASGI app: its routes, one per endpoint of each dialect, and the vault it opens on start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accord.proxy.anthropic import ANTHROPIC
from accord.proxy.dialect import Dialect
from accord.proxy.guard import ProxyAuth, redact_query_strings
from accord.proxy.handler import (
    DEFAULT_TIMEOUT_S,
    MAX_ANSWER_BYTES,
    MAX_BODY_BYTES,
    MAX_NEW_MAPPINGS,
    MaskingProxy,
)
from accord.proxy.masking import LocalMasking, Masking, open_masking
from accord.proxy.openai import OPENAI
from accord.vault import Vault
from accord.vault.types import DEFAULT_SCOPE

__all__ = ["DEFAULT_PORT", "create_proxy_app"]

DEFAULT_PORT = 8600


def create_proxy_app(
    upstream: str,
    *,
    db_url: str | None = None,
    redis_url: str | None = None,
    vault: Vault | None = None,
    scope: str = DEFAULT_SCOPE,
    timeout: float = DEFAULT_TIMEOUT_S,
    max_body: int = MAX_BODY_BYTES,
    max_answer: int = MAX_ANSWER_BYTES,
    max_mappings: int = MAX_NEW_MAPPINGS,
    follow_config: bool = True,
    require_token: bool = False,
) -> Starlette:
    """The proxy as an ASGI app. Its vault opens on start-up from the URLs (ACCORD_DB_URL / ACCORD_REDIS_URL
    by default), following the shared ``vault.*`` settings unless ``follow_config`` is off; or pass ``vault``
    (then the caller closes it). With ACCORD_ADDR and ACCORD_TOKEN set and no database URL, the vault is an
    accord server's (/api/vault, docs/remote.md): no database, no master key. ``require_token``: callers
    present an accord token allowed to write ``vault/<scope>/`` (proxy/guard.py; in remote mode the
    server checks it on every call)."""
    redact_query_strings()

    async def open_vault() -> Masking:
        if vault is not None:
            return LocalMasking(vault, None)
        return await open_masking(db_url, redis_url, follow_config=follow_config)

    async def open_auth() -> ProxyAuth:
        return await ProxyAuth.open(db_url, redis_url, proxy.scope)

    proxy = MaskingProxy(
        upstream,
        open_vault=open_vault,
        scope=scope,
        timeout=timeout,
        max_body=max_body,
        max_answer=max_answer,
        max_mappings=max_mappings,
        open_auth=open_auth,
        require_token=require_token,
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await proxy.start()
        try:
            yield
        finally:
            await proxy.aclose()

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes = [
        Route("/v1/chat/completions", proxy.endpoint(OPENAI), methods=["POST"]),
        Route("/v1/messages", proxy.endpoint(ANTHROPIC), methods=["POST"]),
        Route("/v1/messages/count_tokens", proxy.endpoint(ANTHROPIC), methods=["POST"]),
        Route("/v1/models", proxy.passthrough(OPENAI), methods=["GET"]),
        Route("/v1/models/{model:path}", proxy.passthrough(OPENAI), methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    handlers = {404: _unknown_route, 405: _unknown_route}
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    app.state.proxy = proxy
    return app


async def _unknown_route(request: Request, exc: Exception) -> Response:
    """An error body the caller's SDK can read (Anthropic's under /v1/messages, else OpenAI's)."""
    dialect: Dialect = ANTHROPIC if request.url.path.startswith("/v1/messages") else OPENAI
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    verb = "does not take" if status == 405 else "has no route"
    detail = f"this proxy {verb} {request.method} {request.url.path}"
    code = "method_not_allowed" if status == 405 else "unknown_route"
    return JSONResponse(dialect.error_body(status, detail, code), status)
