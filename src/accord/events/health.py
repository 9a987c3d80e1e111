"""A producer's readiness in the application's own ``/readyz`` (docs/events.md, "Readiness").

    app.add_route("/readyz", accord.events.readiness_endpoint(pipeline))       # Starlette or FastAPI

or, in a readiness route the application already has: ``answer, ready = pipeline.health()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from accord.events.pipeline import Pipeline

__all__ = ["readiness", "readiness_endpoint"]

Check = Callable[[], Awaitable[tuple[dict[str, Any], bool]]]


async def readiness(pipeline: Pipeline, checks: Mapping[str, Check] | None = None) -> tuple[dict[str, Any], bool]:
    """``{"ready": ..., "dependencies": {"events": pipeline.health(), name: check(), ...}}`` and the verdict."""
    dependencies: dict[str, Any] = {}
    dependencies["events"], ready = pipeline.health()
    for name, check in (checks or {}).items():
        dependencies[name], ok = await check()
        ready = ready and ok
    return {"ready": ready, "dependencies": dependencies}, ready


def readiness_endpoint(
    pipeline: Pipeline, checks: Mapping[str, Check] | None = None
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint answering 200 when ready, 503 when not, the body as :func:`readiness` builds it.

    ``checks`` adds the application's own dependencies: each an ``async () -> (answer, ready)``.
    """

    async def endpoint(_request: Request) -> Response:
        body, ready = await readiness(pipeline, checks)
        return JSONResponse(body, status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})

    return endpoint
