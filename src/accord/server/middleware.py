"""ASGI middleware: a request id on every request, a body size limit, and request metrics."""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accord.core.errors import BodyTooLargeError, RequestTooLargeError
from accord.core.keys import MAX_VALUE_BYTES
from accord.server.fast_reads import FastReads
from accord.server.fast_writes import FastWrites
from accord.server.metrics import Metrics

MAX_BODY_BYTES = 1024 * 1024  # above the 512 KiB value limit, so a full-size Consul KV value gets through
CONSUL_KV_PATH = "/v1/kv/"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class AccordMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_body: int = MAX_BODY_BYTES,
        fast: FastReads | None = None,
        fast_writes: FastWrites | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body
        self.fast = fast
        self.fast_writes = fast_writes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id, declared_length = _scan_headers(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        consul_kv = scope.get("path", "").startswith(CONSUL_KV_PATH)
        if consul_kv and declared_length > MAX_VALUE_BYTES:
            await _consul_too_large(send, request_id, declared_length)
            return
        if declared_length > self.max_body:
            await _too_large(send, request_id, self.max_body)
            return
        started = time.perf_counter()
        status = {"code": 500}
        received = {"bytes": 0}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received["bytes"] += len(message.get("body", b""))
                if received["bytes"] > self.max_body:
                    raise BodyTooLargeError(self.max_body)
            return message

        async def tagged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        route: str | None = None
        try:
            route = await self._dispatch(scope, limited_receive, tagged_send)
        except BodyTooLargeError:
            status["code"] = RequestTooLargeError.http_status
            if consul_kv:
                await _consul_too_large(send, request_id, received["bytes"])
            else:
                await _too_large(send, request_id, self.max_body)
        finally:
            observed: str = route if route is not None else getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe_request(scope["method"], observed, status["code"], time.perf_counter() - started)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> str | None:
        """The fast path's route template when it answered, else FastAPI answers (and None)."""
        if self.fast is not None and (route := await self.fast.serve(scope, send)) is not None:
            return route
        if self.fast_writes is not None and self.fast_writes.wants(scope):
            route, receive = await self.fast_writes.serve(scope, receive, send)
            if route is not None:
                return route
        await self.app(scope, receive, send)
        return None


def _scan_headers(scope: Scope) -> tuple[str, int]:
    """The caller's X-Request-ID if well formed (else a new random one) and the declared Content-Length."""
    request_id: str | None = None
    length: int | None = None
    for name, value in scope.get("headers", []):
        if name == b"x-request-id" and request_id is None:
            text = bytes(value).decode("latin-1")
            if _REQUEST_ID.match(text):
                request_id = text
        elif name == b"content-length" and length is None:
            try:
                length = int(value)
            except ValueError:
                length = 0
    return request_id or os.urandom(16).hex(), length or 0


async def _too_large(send: Send, request_id: str, limit: int) -> None:
    body: dict[str, Any] = {
        "error": RequestTooLargeError.error_code,
        "detail": f"request body larger than {limit} bytes",
        "request_id": request_id,
    }
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send(
        {
            "type": "http.response.start",
            "status": RequestTooLargeError.http_status,
            "headers": [*headers, (b"x-request-id", request_id.encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _consul_too_large(send: Send, request_id: str, size: int) -> None:
    """Consul's own 413 for a KV value over ``kv_max_value_size``: plain text, clients match it."""
    payload = (
        f"Request body({size} bytes) too large, max size: {MAX_VALUE_BYTES} bytes. See "
        "https://developer.hashicorp.com/consul/docs/agent/config/config-files#kv_max_value_size."
    ).encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(payload)).encode())]
    headers.append((b"x-request-id", request_id.encode()))
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
