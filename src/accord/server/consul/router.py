"""Every /v1 route, and Consul's answer for a /v1 path it does not know."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from accord.server.consul import agent_routes, catalog_routes, check_routes, health_routes, status_routes
from accord.server.consul.kv_routes import kv_routes
from accord.server.consul.session_routes import session_routes
from accord.server.consul.state import ConsulState
from accord.server.consul.wire import text_error


def consul_state(request: Request) -> ConsulState:
    state: ConsulState = request.app.state.consul
    return state


async def _unknown(request: Request) -> Response:
    """404 for a path no route declares; 405 (with ``Allow``) for a declared path asked with another method."""
    allowed: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.path != "/v1/{rest:path}" and route.path_regex.match(request.url.path):
            allowed |= route.methods or set()
    if allowed:
        answer = text_error(405, f"method {request.method} not allowed")
        answer.headers["Allow"] = ",".join(["OPTIONS", *sorted(allowed - {"HEAD", "OPTIONS"})])
        return answer
    return text_error(404, "Invalid URL path: not a recognized HTTP API endpoint")


def consul_routes() -> list[BaseRoute]:
    """The /v1 routes, then the catch-all for unknown /v1 paths (it must come last)."""
    modules: list[list[BaseRoute]] = [
        kv_routes(),
        session_routes(),
        agent_routes.routes(),
        check_routes.routes(),
        catalog_routes.routes(),
        health_routes.routes(),
        status_routes.routes(),
    ]
    return [
        *(route for routes in modules for route in routes),
        Route("/v1/{rest:path}", _unknown, methods=["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS"]),
    ]
