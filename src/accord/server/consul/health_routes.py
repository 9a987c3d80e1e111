"""``/v1/health/*``: service entries with their checks (node checks included), checks by service, state, node."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from accord.auth.tokens import Token
from accord.core.errors import ConsulApiError
from accord.registry.catalog import Catalog, Item, health_check_json, node_json
from accord.server.consul.catalog_routes import (
    blocking,
    caller,
    catalog_of,
    filtered,
    instances,
    readable,
    tags_of,
)
from accord.server.consul.wire import json_response, passing_flag

__all__ = ["routes"]

_STATES = ("any", "passing", "warning", "critical")


def _checks(catalog: Catalog, token: Token) -> list[dict[str, Any]]:
    """Every check the token may read, the synthesised ``serfHealth`` of every node included."""
    rows = [health_check_json(item, item.value) for item in catalog.checks() if readable(token, item.key)]
    rows += [health_check_json(None, catalog.serf_check(str(node.value.get("Node")))) for node in catalog.nodes()]
    return sorted(rows, key=lambda row: (row["Node"], row["CheckID"]))


def _service_json(item: Item) -> dict[str, Any]:
    value = item.value
    return {
        "ID": value["ID"],
        "Service": value["Service"],
        "Tags": list(value.get("Tags") or []),
        "Address": value.get("Address", ""),
        "TaggedAddresses": dict(value.get("TaggedAddresses") or {}),
        "Meta": dict(value.get("Meta") or {}),
        "Port": value.get("Port", 0),
        "Weights": value.get("Weights") or {"Passing": 1, "Warning": 1},
        "EnableTagOverride": bool(value.get("EnableTagOverride")),
        "Kind": value.get("Kind", ""),
        "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
        "Connect": {},
        "PeerName": "",
        "CreateIndex": item.create_index,
        "ModifyIndex": item.modify_index,
    }


async def _service(request: Request) -> Response:
    token = caller(request)
    catalog = catalog_of(request)
    name = request.path_params["name"]
    passing = passing_flag(request)
    index = await blocking(request, lambda: catalog.service_index(name))
    checks = _checks(catalog, token)
    rows = []
    for item in instances(catalog, token, name, tags_of(request)):
        node_name = str(item.value.get("Node"))
        node = catalog.node(node_name)
        if node is None:
            continue
        mine = [
            row
            for row in checks
            if row["Node"] == node_name and (row["ServiceID"] == "" or row["ServiceID"] == item.value["ID"])
        ]
        if passing and any(row["Status"] != "passing" for row in mine):
            continue
        rows.append({"Node": node_json(node), "Service": _service_json(item), "Checks": mine})
    return json_response(filtered(request, rows), index=index)


async def _service_checks(request: Request) -> Response:
    token = caller(request)
    catalog = catalog_of(request)
    name = request.path_params["name"]
    index = await blocking(request, lambda: catalog.service_index(name))
    rows = sorted(
        (row for row in _checks(catalog, token) if row["ServiceName"] == name),
        key=lambda row: (row["CheckID"], row["Node"]),
    )
    return json_response(filtered(request, rows), index=index)


async def _state(request: Request) -> Response:
    state = request.path_params["state"]
    if state not in _STATES:
        raise ConsulApiError(400, f"Invalid check state: {state!r}" if state else "Missing check state")
    token = caller(request)
    catalog = catalog_of(request)
    passing_flag(request)
    index = await blocking(request, lambda: max(catalog.checks_index(), catalog.nodes_index()))
    rows = [row for row in _checks(catalog, token) if state == "any" or row["Status"] == state]
    return json_response(filtered(request, rows), index=index)


async def _node(request: Request) -> Response:
    token = caller(request)
    catalog = catalog_of(request)
    name = request.path_params["node"]
    index = await blocking(request, lambda: max(catalog.checks_index(), catalog.nodes_index()))
    rows = [row for row in _checks(catalog, token) if row["Node"] == name]
    return json_response(filtered(request, rows), index=index)


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/health/service/{name:path}", _service, methods=["GET"]),
        Route("/v1/health/checks/{name:path}", _service_checks, methods=["GET"]),
        Route("/v1/health/state/{state:path}", _state, methods=["GET"]),
        Route("/v1/health/node/{node:path}", _node, methods=["GET"]),
    ]
