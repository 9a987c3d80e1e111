"""The registry commands' way to the Consul API: the server named by ACCORD_ADDR, or the same routes in-process.

Without ACCORD_ADDR the command runs accord's own /v1 routes in this process on the database (an
embedded app: no watching, no first-start token, no leader), so both ways answer byte for byte the
same and no logic is written twice. Holding the database is holding every key, so the in-process
caller has the management policy, as every command on the database does.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx

from accord.cli.backend.http import normalize_addr, shown_addr
from accord.core import environ
from accord.core.errors import RemoteError, ServerUnreachableError

__all__ = ["ConsulClient", "open_consul"]


class ConsulClient:
    """A few Consul API calls, their failures as accord errors (Consul's text as the message)."""

    def __init__(self, http: httpx.AsyncClient, where: str) -> None:
        self._http = http
        self.where = where

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
        json: Any = None,
        ok_404: bool = False,
    ) -> httpx.Response:
        try:
            response = await self._http.request(method, path, params=params, content=content, json=json)
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"cannot reach the accord server at {self.where}: {exc}") from None
        if response.status_code == 404 and ok_404:
            return response
        if response.status_code >= 400:
            raise RemoteError(response.text.strip() or response.reason_phrase, status=response.status_code)
        return response

    async def kv_get(self, key: str) -> dict[str, Any] | None:
        response = await self.call("GET", f"/v1/kv/{key}", ok_404=True)
        return None if response.status_code == 404 else dict(response.json()[0])

    async def kv_list(self, prefix: str) -> list[dict[str, Any]]:
        response = await self.call("GET", f"/v1/kv/{prefix}", params={"recurse": ""}, ok_404=True)
        return [] if response.status_code == 404 else list(response.json())

    async def kv_put(self, key: str, value: bytes, *, flags: int = 0, cas: int | None = None) -> bool:
        params = {"flags": str(flags)} | ({"cas": str(cas)} if cas is not None else {})
        return bool((await self.call("PUT", f"/v1/kv/{key}", params=params, content=value)).json())

    async def kv_delete(self, key: str, *, recurse: bool = False) -> bool:
        params = {"recurse": ""} if recurse else None
        return bool((await self.call("DELETE", f"/v1/kv/{key}", params=params)).json())

    async def services(self) -> dict[str, list[str]]:
        return dict((await self.call("GET", "/v1/catalog/services")).json())

    async def health(self, name: str, *, passing: bool = False) -> list[dict[str, Any]]:
        params = {"passing": "1"} if passing else None
        return list((await self.call("GET", f"/v1/health/service/{name}", params=params)).json())

    async def register(self, body: dict[str, Any]) -> None:
        await self.call("PUT", "/v1/agent/service/register", json=body)

    async def deregister(self, service_id: str) -> None:
        await self.call("PUT", f"/v1/agent/service/deregister/{service_id}")


def decoded_value(entry: dict[str, Any]) -> bytes:
    value = entry.get("Value")
    return base64.b64decode(value) if isinstance(value, str) else b""


@asynccontextmanager
async def open_consul(db_url: str | None, redis_url: str | None, *, read_only: bool) -> AsyncIterator[ConsulClient]:
    settings = environ.current()
    if settings.addr is not None:
        addr = normalize_addr(settings.addr)
        headers = {"X-Consul-Token": settings.token} if settings.token else {}
        async with httpx.AsyncClient(base_url=addr, headers=headers, timeout=30.0) as http:
            yield ConsulClient(http, shown_addr(addr))
        return
    async with _embedded(db_url, redis_url, read_only=read_only) as (client, database):
        yield client
    from accord.cli.backend import name_database

    name_database(database)


@asynccontextmanager
async def _embedded(
    db_url: str | None, redis_url: str | None, *, read_only: bool
) -> AsyncIterator[tuple[ConsulClient, str]]:
    from accord.auth.policy import MANAGEMENT
    from accord.auth.tokens import Token
    from accord.cli.backend.direct import require_database
    from accord.config.connect import default_actor
    from accord.server.app import create_app
    from accord.server.consul.wire import LOCAL_CALLER

    if read_only:
        require_database(db_url)
    app = create_app(db_url=db_url, redis_url=redis_url or "", embedded=True)
    caller = Token(default_actor(), "local", MANAGEMENT, datetime.now(UTC), "accord CLI")

    async def with_caller(scope: Any, receive: Any, send: Any) -> None:
        await app({**scope, LOCAL_CALLER: caller}, receive, send)

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=with_caller)
        async with httpx.AsyncClient(transport=transport, base_url="http://accord.local") as http:
            yield ConsulClient(http, "the database"), app.state.accord.live.store.url
