"""Every /v1 route, and Consul's answer for a /v1 path it does not know."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from accord.server.consul.state import ConsulState
from accord.server.consul.wire import text_error


def consul_state(request: Request) -> ConsulState:
    state: ConsulState = request.app.state.consul
    return state


async def _unknown(_request: Request) -> Response:
    return text_error(404, "Invalid URL path: not a recognized HTTP API endpoint")


def consul_routes() -> list[BaseRoute]:
    """The /v1 routes, then the catch-all for unknown /v1 paths (it must come last)."""
    from accord.server.consul import agent_routes, catalog_routes, health_routes  # they import consul_state

    modules: list[list[BaseRoute]] = [agent_routes.routes(), catalog_routes.routes(), health_routes.routes()]
    return [
        *(route for routes in modules for route in routes),
        Route("/v1/{rest:path}", _unknown, methods=["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS"]),
    ]
