"""The proxy as an ASGI app: its routes, one per endpoint of each dialect, and the vault it opens on start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accord.proxy.anthropic import ANTHROPIC
from accord.proxy.handler import DEFAULT_TIMEOUT_S, MAX_BODY_BYTES, Closer, MaskingProxy
from accord.proxy.openai import OPENAI
from accord.vault import Vault
from accord.vault.shared import SharedVault
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
    follow_config: bool = True,
) -> Starlette:
    """The proxy as an ASGI app. Its vault opens on start-up from the URLs (ACCORD_DB_URL / ACCORD_REDIS_URL
    by default), following the shared ``vault.*`` settings unless ``follow_config`` is off; or pass ``vault``
    (then the caller closes it)."""

    async def open_vault() -> tuple[Vault, Closer | None]:
        if vault is not None:
            return vault, None
        shared = await SharedVault.from_url(db_url, redis_url, follow_config=follow_config)
        return shared.vault, shared.aclose

    proxy = MaskingProxy(upstream, open_vault=open_vault, scope=scope, timeout=timeout, max_body=max_body)

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
        Route("/healthz", healthz, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.proxy = proxy
    return app
