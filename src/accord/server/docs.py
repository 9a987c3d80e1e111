"""/docs and /openapi.json served by the server itself, Swagger UI's files included (no CDN).

FastAPI's own /docs loads Swagger UI from a CDN, so it is blank on a machine without internet;
the files ship in the swagger-ui-bundle-v2 package instead. They are routes, not a mount, so
the request metrics count each under its own route.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from accord.core.errors import NotFoundError

ASSETS = "/docs/assets"
_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def docs_router(app: FastAPI) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/openapi.json")
    async def openapi() -> JSONResponse:
        schema: dict[str, Any] = app.openapi()
        return JSONResponse(schema)

    @router.get("/docs")
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )

    @router.get(ASSETS + "/{name}")
    async def asset(name: str) -> FileResponse:
        if name not in _FILES:  # a fixed list: nothing else of the package (or the disk) is reachable
            raise NotFoundError(f"no documentation asset {name!r}")
        from swagger_ui_bundle import swagger_ui_path

        return FileResponse(str(swagger_ui_path / name), media_type=_FILES[name])

    return router
