"""Liveness, readiness and metrics: open to everyone (no token), as probes and scrapers expect."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import JsonValue

from accord.server import schemas as s
from accord.server.deps import State, presented_token

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Ready to serve, naming each dependency and whether it is degraded")
async def readyz(state: State, request: Request, response: Response) -> s.Readiness:
    status = state.live.status()
    database_ok = status.database_ok
    dependencies: dict[str, dict[str, JsonValue]] = {
        "database": {"ok": database_ok, "degraded": not database_ok},
        "bus": {"ok": not status.bus_degraded, "degraded": status.bus_degraded, "mode": status.bus},
    }
    authenticated = _authenticated(state, request)
    if authenticated:  # where the database is, only for token holders: probes are anonymous
        dependencies["database"]["url"] = state.live.store.url
    if status.fallback_active:
        dependencies["redis"] = {"ok": False, "degraded": True, "fallback": status.bus}
    problem = state.admin.secrets_problem()
    if problem is not None:
        dependencies["secrets"] = {"ok": False, "degraded": True, "error": problem}
    events_ready = True
    events = getattr(request.app.state, "events", None)  # serve --events: the consumer (accord.events.serving)
    if events is not None:
        dependencies["events"], events_ready = events.readiness(detail=authenticated)
    ready = database_ok and problem is None and events_ready
    response.status_code = 200 if ready else 503
    return s.Readiness(ready=ready, dependencies=dependencies)


def _authenticated(state: State, request: Request) -> bool:
    secret = presented_token(request)
    return secret is not None and state.tokens.authenticate(secret) is not None


@router.get("/metrics", summary="Prometheus metrics of this process", response_class=Response)
async def metrics(state: State) -> Response:
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
