"""``/v1/catalog/*``: Consul's catalog reads (blocking, per-query indexes) and catalog register/deregister."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from accord.auth.tokens import Token
from accord.registry.bexpr import compile_filter
from accord.registry.blocking import ChangeSignal
from accord.registry.catalog import (
    Catalog,
    Item,
    agent_service_json,
    decode_body,
    has_tags,
    node_json,
    node_key,
    service_node_json,
)
from accord.server.consul.state import ConsulState
from accord.server.consul.wire import (
    check_consistency,
    check_dc,
    consul_caller,
    datacenter,
    json_bool,
    json_response,
    query_index,
    query_wait,
    require,
)
from accord.store.types import WriteContext

__all__ = ["routes"]


# ----- helpers the agent and health routes share ---------------------------------------------------


def consul_state(request: Request) -> ConsulState:
    state: ConsulState = request.app.state.consul
    return state


def catalog_of(request: Request) -> Catalog:
    catalog: Catalog = consul_state(request).catalog
    return catalog


def caller(request: Request) -> Token:
    check_dc(request)
    return consul_caller(request, request.app.state.accord.tokens)


def write_ctx(token: Token, action: str) -> WriteContext:
    return WriteContext(f"consul:{token.name}", action)


def writer(token: Token) -> Callable[[str], None]:
    return lambda key: require(token, key, "write")


def readable(token: Token, key: str) -> bool:
    return token.policy.can_read(key)


async def body_of(request: Request) -> Any:
    return decode_body(await request.body())


async def blocking(request: Request, index_of: Callable[[], int]) -> int:
    """The query's index once it moved past ``?index`` (or at the timeout); reads without index do not block."""
    check_consistency(request)
    index, wait = query_index(request), query_wait(request)
    signal: ChangeSignal = consul_state(request).signal
    return await signal.wait_beyond(index_of, index, wait)


def filtered(request: Request, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    predicate = compile_filter(request.query_params.get("filter"))
    return rows if predicate is None else [row for row in rows if predicate(row)]


def tags_of(request: Request) -> list[str]:
    return request.query_params.getlist("tag")


def instances(catalog: Catalog, token: Token, name: str, tags: list[str]) -> list[Item]:
    return sorted(
        (
            item
            for item in catalog.services()
            if item.value.get("Service") == name and has_tags(item.value, tags) and readable(token, item.key)
        ),
        key=lambda item: (str(item.value.get("Node")), str(item.value.get("ID"))),
    )


# ----- routes ---------------------------------------------------------------------------------------


async def _services(request: Request) -> Response:
    token = caller(request)
    catalog = catalog_of(request)
    index = await blocking(request, catalog.services_index)
    rows = [agent_service_json(item, datacenter()) for item in catalog.services() if readable(token, item.key)]
    rows = filtered(request, [{**row, "ServiceName": row["Service"], "ServiceTags": row["Tags"]} for row in rows])
    out: dict[str, list[str]] = {"consul": []}
    for row in rows:
        out[row["Service"]] = sorted(set(out.get(row["Service"], [])) | set(row["Tags"]))
    return json_response(out, index=index)


async def _service(request: Request) -> Response:
    token = caller(request)
    catalog = catalog_of(request)
    name = request.path_params["name"]
    index = await blocking(request, lambda: catalog.service_index(name))
    rows = []
    for item in instances(catalog, token, name, tags_of(request)):
        node = catalog.node(str(item.value.get("Node")))
        if node is not None:
            rows.append(service_node_json(node, item))
    return json_response(filtered(request, rows), index=index)


async def _nodes(request: Request) -> Response:
    token = caller(request)
    catalog = catalog_of(request)
    index = await blocking(request, catalog.nodes_index)
    rows = [node_json(item) for item in catalog.nodes() if readable(token, node_key(str(item.value.get("Node"))))]
    return json_response(filtered(request, rows), index=index)


async def _node(request: Request) -> Response:
    token = caller(request)
    catalog = catalog_of(request)
    name = request.path_params["node"]
    index = await blocking(request, lambda: max(catalog.nodes_index(), catalog.services_index()))
    node = catalog.node(name)
    if node is None:
        return json_response(None, index=index)
    require(token, node_key(name), "read")
    services = {
        str(item.value["ID"]): agent_service_json(item, datacenter())
        for item in catalog.services()
        if item.value.get("Node") == name and readable(token, item.key)
    }
    return json_response({"Node": node_json(node), "Services": services}, index=index)


async def _datacenters(request: Request) -> Response:
    return json_response([datacenter()])


async def _register(request: Request) -> Response:
    token = caller(request)
    body = await body_of(request)
    await catalog_of(request).catalog_register(body, ctx=write_ctx(token, "catalog.register"), authorize=writer(token))
    return json_bool(True)


async def _deregister(request: Request) -> Response:
    token = caller(request)
    body = await body_of(request)
    await catalog_of(request).catalog_deregister(
        body, ctx=write_ctx(token, "catalog.deregister"), authorize=writer(token)
    )
    return json_bool(True)


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/catalog/services", _services, methods=["GET"]),
        Route("/v1/catalog/service/{name:path}", _service, methods=["GET"]),
        Route("/v1/catalog/nodes", _nodes, methods=["GET"]),
        Route("/v1/catalog/node/{node:path}", _node, methods=["GET"]),
        Route("/v1/catalog/datacenters", _datacenters, methods=["GET"]),
        Route("/v1/catalog/register", _register, methods=["PUT"]),
        Route("/v1/catalog/deregister", _deregister, methods=["PUT"]),
    ]
