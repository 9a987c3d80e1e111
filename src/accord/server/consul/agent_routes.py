"""``/v1/agent/*``: service and check registration, the agent's services and checks, self and members."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

import accord
from accord.core import environ
from accord.registry.catalog import Catalog, agent_service_json, health_check_json
from accord.server.consul.catalog_routes import (
    body_of,
    caller,
    catalog_of,
    filtered,
    readable,
    write_ctx,
    writer,
)
from accord.server.consul.wire import CONSUL_VERSION, datacenter, empty_ok, flag, json_response

__all__ = ["routes", "self_address"]


def self_address(request: Request) -> str:
    """The address this process answers on: ``ACCORD_ADVERTISE_ADDR``, else the socket it was reached on."""
    advertised = environ.current().advertise_addr
    if advertised:
        return advertised
    server = request.scope.get("server")
    if server:
        host, port = server[0], server[1]
        return f"{host}:{port}" if port else str(host)
    return f"{request.url.hostname}:{request.url.port}"


async def _register_service(request: Request) -> Response:
    token = caller(request)
    body = await body_of(request)
    replace = request.query_params.get("replace-existing-checks")
    await catalog_of(request).register_service(
        body,
        ctx=write_ctx(token, "agent.service.register"),
        replace_checks=replace is not None and replace.lower() in ("", "true", "1"),
        authorize=writer(token),
    )
    return empty_ok()


async def _deregister_service(request: Request) -> Response:
    token = caller(request)
    await catalog_of(request).deregister_service(
        request.path_params["id"], ctx=write_ctx(token, "agent.service.deregister"), authorize=writer(token)
    )
    return empty_ok()


async def _register_check(request: Request) -> Response:
    token = caller(request)
    body = await body_of(request)
    await catalog_of(request).register_check(
        body, ctx=write_ctx(token, "agent.check.register"), authorize=writer(token)
    )
    return empty_ok()


async def _deregister_check(request: Request) -> Response:
    token = caller(request)
    await catalog_of(request).deregister_check(
        request.path_params["id"], ctx=write_ctx(token, "agent.check.deregister"), authorize=writer(token)
    )
    return empty_ok()


async def _services(request: Request) -> Response:
    token = caller(request)
    catalog = catalog_of(request)
    rows = [
        agent_service_json(item, datacenter())
        for item in catalog.services()
        if item.value.get("Node") == catalog.node_name and readable(token, item.key)
    ]
    return json_response({row["ID"]: row for row in filtered(request, rows)})


async def _checks(request: Request) -> Response:
    token = caller(request)
    catalog = catalog_of(request)
    rows = [
        health_check_json(item, item.value)
        for item in catalog.checks()
        if item.value.get("Node") == catalog.node_name and readable(token, item.key)
    ]
    return json_response({row["CheckID"]: row for row in filtered(request, rows)})


def _member(catalog: Catalog) -> dict[str, Any]:
    return {
        "Name": catalog.node_name,
        "Addr": catalog.node_address(),
        "Port": 8301,
        "Tags": {"dc": datacenter(), "role": "consul", "port": "8300", "id": catalog.node_id, "vsn": "2"},
        "Status": 1,
        "ProtocolMin": 1,
        "ProtocolMax": 5,
        "ProtocolCur": 2,
        "DelegateMin": 2,
        "DelegateMax": 5,
        "DelegateCur": 4,
    }


async def _self(request: Request) -> Response:
    caller(request)  # a bad token is still refused; no rule is needed (py-consul sends none here)
    catalog = catalog_of(request)
    services = sum(1 for item in catalog.services() if item.value.get("Node") == catalog.node_name)
    checks = sum(1 for item in catalog.checks() if item.value.get("Node") == catalog.node_name)
    leader = catalog.leader_address(self_address(request))
    body = {
        "Config": {
            "Datacenter": datacenter(),
            "PrimaryDatacenter": datacenter(),
            "NodeName": catalog.node_name,
            "NodeID": catalog.node_id,
            "Revision": f"accord-{accord.__version__}",
            "Server": True,
            "Version": CONSUL_VERSION,
            "BuildDate": "2025-01-01T00:00:00Z",
        },
        "DebugConfig": {},
        "Coord": None,
        "Member": _member(catalog),
        "Stats": {
            "consul": {
                "leader": str(leader == self_address(request)).lower(),
                "leader_addr": leader,
                "server": "true",
                "known_datacenters": "1",
                "bootstrap": "false",
            },
            "agent": {"checks": str(checks), "services": str(services)},
            "build": {"version": CONSUL_VERSION, "revision": "", "prerelease": ""},
        },
        "Meta": {},
        "xDS": {"SupportedProxies": {"envoy": []}, "Port": -1, "Ports": {"Plaintext": -1, "TLS": -1}},
    }
    return json_response(body)


async def _members(request: Request) -> Response:
    caller(request)
    _ = flag(request, "wan")
    return json_response([_member(catalog_of(request))])


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/agent/service/register", _register_service, methods=["PUT"]),
        Route("/v1/agent/service/deregister/{id:path}", _deregister_service, methods=["PUT"]),
        Route("/v1/agent/check/register", _register_check, methods=["PUT"]),
        Route("/v1/agent/check/deregister/{id:path}", _deregister_check, methods=["PUT"]),
        Route("/v1/agent/services", _services, methods=["GET"]),
        Route("/v1/agent/checks", _checks, methods=["GET"]),
        Route("/v1/agent/self", _self, methods=["GET"]),
        Route("/v1/agent/members", _members, methods=["GET"]),
    ]
