"""``/v1/kv/<key>`` and ``/v1/txn``: Consul's KV API over ``registry/kv.py`` (reference §2.1-2.4)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from accord.auth.tokens import Token
from accord.core.errors import ConsulApiError, InvalidKeyError
from accord.core.keys import MAX_VALUE_BYTES
from accord.registry.kv import KvItem, KvService, too_large
from accord.registry.kvkeys import encode_key, is_secret_kv_key
from accord.registry.txn import TxnService, parse_ops
from accord.server.consul.state import ConsulState
from accord.server.consul.wire import (
    check_consistency,
    check_dc,
    consul_caller,
    flag,
    json_bool,
    json_response,
    meta_headers,
    query_index,
    query_wait,
    require,
    text_error,
    token_secret,
)
from accord.store.types import WriteContext

__all__ = ["kv_routes", "read_body", "with_allowed", "write_context"]


def consul_state(request: Request) -> ConsulState:
    state: ConsulState = request.app.state.consul
    return state


def _caller(request: Request) -> Token:
    return consul_caller(request, request.app.state.accord.tokens)


def write_context(request: Request, token: Token, action: str) -> WriteContext:
    return WriteContext(f"token:{token.name}", action, getattr(request.state, "request_id", None))


async def read_body(request: Request, limit: int = MAX_VALUE_BYTES) -> bytes:
    """The request body, refused with Consul's 413 text once it grows past ``limit``."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared))
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(size)
        chunks.append(chunk)
    return b"".join(chunks)


def _store_key(key: str) -> str:
    try:
        return encode_key(key)
    except InvalidKeyError as exc:
        raise ConsulApiError(400, exc.detail) from None


def _readable(token: Token, item: KvItem) -> bool:
    if not token.policy.can_read(item.store_key):
        return False
    return not is_secret_kv_key(item.key) or token.policy.can_reveal(item.store_key)


def _require_reveal(token: Token, store_key: str, key: str) -> None:
    if is_secret_kv_key(key) and not token.policy.can_reveal(store_key):
        raise ConsulApiError(403, f"Permission denied: token '{token.name}' may not reveal the secret {store_key}")


def _conflicting(request: Request, names: tuple[str, ...]) -> None:
    if sum(1 for name in names if name in request.query_params) > 1:
        raise ConsulApiError(400, f"Conflicting flags: {urlencode(list(request.query_params.multi_items()))}\n")


def _uint_param(request: Request, name: str, text: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise ConsulApiError(400, text)
    return int(raw)


async def kv_get(request: Request) -> Response:
    check_dc(request)
    check_consistency(request)
    index, wait = query_index(request), query_wait(request)
    key: str = request.path_params["key"]
    kv = consul_state(request).kv
    token = _caller(request)
    recurse, keys = flag(request, "recurse"), flag(request, "keys")
    if keys:
        return await _get_keys(request, kv, token, key, index, wait)
    if recurse:
        return await _get_tree(request, kv, token, key, index, wait)
    if key == "":
        raise ConsulApiError(400, "Missing key name")
    store_key = _store_key(key)
    require(token, store_key, "read")
    _require_reveal(token, store_key, key)
    current = await consul_state(request).signal.wait_beyond(lambda: kv.key_index(key), index, wait)
    item = kv.get(key)
    if item is None:
        return Response(b"", 404, meta_headers(kv.global_index()))
    if flag(request, "raw"):
        headers = {
            **meta_headers(current),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
        }
        return Response(item.raw, 200, headers, media_type="text/plain")
    return json_response([item.dir_entry()], index=current)


def _filtered(request: Request, token: Token, items: list[KvItem]) -> tuple[list[KvItem], dict[str, str]]:
    visible = [item for item in items if _readable(token, item)]
    dropped = len(visible) != len(items) and token_secret(request) is not None
    return visible, ({"X-Consul-Results-Filtered-By-ACLs": "true"} if dropped else {})


async def _get_tree(
    request: Request, kv: KvService, token: Token, prefix: str, index: int, wait: float | None
) -> Response:
    current = await consul_state(request).signal.wait_beyond(lambda: kv.prefix_index(prefix), index, wait)
    items, extra = _filtered(request, token, kv.items(prefix))
    if not items:
        return Response(b"", 404, {**meta_headers(current), **extra})
    return json_response([item.dir_entry() for item in items], index=current, headers=extra)


async def _get_keys(
    request: Request, kv: KvService, token: Token, prefix: str, index: int, wait: float | None
) -> Response:
    separator = request.query_params.get("separator") or request.query_params.get("seperator") or ""
    current = await consul_state(request).signal.wait_beyond(lambda: kv.prefix_index(prefix), index, wait)
    items, extra = _filtered(request, token, kv.items(prefix))
    names: list[str] = []
    for item in items:
        name = item.key
        if separator:
            cut = name.find(separator, len(prefix))
            if cut >= 0:
                name = name[: cut + len(separator)]
        if not names or names[-1] != name:
            names.append(name)
    if not names and prefix != "":
        return Response(b"", 404, {**meta_headers(current), **extra})
    return json_response(names, index=current, headers=extra)


async def kv_put(request: Request) -> Response:
    check_dc(request)
    key: str = request.path_params["key"]
    if key == "":
        raise ConsulApiError(400, "Missing key name")
    _conflicting(request, ("cas", "acquire", "release"))
    flags = _uint_param(request, "flags", "Invalid flags")
    cas = _uint_param(request, "cas", "Invalid cas index")
    store_key = _store_key(key)
    state = consul_state(request)
    token = _caller(request)
    require(token, store_key, "write")
    raw = await read_body(request)
    acquire = request.query_params.get("acquire")
    release = request.query_params.get("release")
    if acquire is not None or release is not None:
        require(token, "registry/session/", "write", resource="session")
    ok = await state.kv.put(
        key,
        raw,
        flags=flags or 0,
        cas=cas,
        acquire=acquire,
        release=release,
        session_exists=state.sessions.exists,
        ctx=write_context(request, token, "kv-put"),
    )
    return json_bool(ok)


async def kv_delete(request: Request) -> Response:
    check_dc(request)
    key: str = request.path_params["key"]
    recurse = flag(request, "recurse")
    _conflicting(request, ("cas", "recurse"))
    cas = _uint_param(request, "cas", "Invalid cas index")
    kv = consul_state(request).kv
    token = _caller(request)
    ctx = write_context(request, token, "kv-delete")
    if recurse:
        items = kv.items(key)
        if key != "":
            require(token, _store_key(key), "write")
        for item in items:
            require(token, item.store_key, "write")
        return json_bool(await kv.delete_tree(items, ctx=ctx))
    if key == "":
        raise ConsulApiError(400, "Missing key name")
    require(token, _store_key(key), "write")
    return json_bool(await kv.delete(key, cas=cas, ctx=ctx))


async def txn(request: Request) -> Response:
    check_dc(request)
    check_consistency(request)
    state = consul_state(request)
    token = _caller(request)
    body = await read_body(request, limit=MAX_VALUE_BYTES * 4)
    try:
        decoded: Any = json.loads(body) if body else []
    except ValueError as exc:
        raise ConsulApiError(400, f"Failed to parse body: {exc}") from None
    ops = parse_ops(decoded)

    def can_read(store_key: str) -> bool:
        if not token.policy.can_read(store_key):
            return False
        return not store_key.startswith("kv/secrets/") or token.policy.can_reveal(store_key)

    service = TxnService(state.kv, state.sessions.exists)
    outcome = await service.run(
        ops, can_read=can_read, can_write=token.policy.can_write, ctx=write_context(request, token, "txn")
    )
    index = state.kv.global_index() if outcome.read_only else None
    if outcome.ok:
        return json_response({"Results": outcome.results or None, "Errors": None}, index=index)
    return json_response({"Results": None, "Errors": outcome.errors}, status=409, index=index)


_METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")


def with_allowed(path: str, endpoints: dict[str, Any]) -> list[BaseRoute]:
    """``path``'s routes, and Consul's 405 (``Allow: OPTIONS,...``) for the methods it does not declare."""
    allowed = ",".join(["OPTIONS", *endpoints])

    async def not_allowed(request: Request) -> Response:
        response = text_error(405, f"method {request.method} not allowed")
        response.headers["Allow"] = allowed
        return response

    routes: list[BaseRoute] = [Route(path, endpoint, methods=[method]) for method, endpoint in endpoints.items()]
    others = [method for method in _METHODS if method not in endpoints]
    return [*routes, Route(path, not_allowed, methods=others)]


def kv_routes() -> list[BaseRoute]:
    return [
        *with_allowed("/v1/kv/{key:path}", {"GET": kv_get, "PUT": kv_put, "DELETE": kv_delete}),
        *with_allowed("/v1/txn", {"PUT": txn}),
    ]
