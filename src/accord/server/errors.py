"""Library errors to HTTP statuses, and every error body in one shape: {"error": ..., "detail": ...}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from accord.auth.policy import PolicyError
from accord.auth.tokens import TokenError
from accord.core import errors as e
from accord.core.crypto import DecryptionError, MasterKeyError
from accord.server.middleware import BodyTooLargeError

log = logging.getLogger("accord.server")

STATUS: list[tuple[type[e.AccordError], int]] = [
    (e.AuthenticationError, 401),
    (e.PermissionDeniedError, 403),
    (e.UnknownSettingError, 404),
    (e.CompactedError, 410),
    (e.NotFoundError, 404),
    (e.ConflictError, 409),
    (e.ValueTooLargeError, 413),
    (e.RequestTooLargeError, 413),
    (e.ValidationFailedError, 422),
    (e.InvalidKeyError, 422),
    (e.CodecError, 422),
    (e.ConfigFileError, 422),
    (PolicyError, 422),
    (TokenError, 422),
    (e.StoreUnavailableError, 503),
    (MasterKeyError, 503),  # the server is misconfigured (no shared master key), not the request
    (DecryptionError, 503),
]


def status_for(exc: e.AccordError) -> int:
    return next((code for cls, code in STATUS if isinstance(exc, cls)), 400)


def error_body(name: str, detail: str, request: Request) -> dict[str, str]:
    return {"error": name, "detail": detail, "request_id": getattr(request.state, "request_id", "")}


def install(app: FastAPI) -> None:
    @app.exception_handler(e.AccordError)
    async def _accord(request: Request, exc: e.AccordError) -> JSONResponse:
        status = status_for(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(type(exc).__name__, exc.detail, request), status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(_describe(err) for err in exc.errors())
        return JSONResponse(error_body("RequestValidationError", problems or "invalid request", request), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, RecursionError):  # FastAPI's body parser gave up on deeply nested JSON
            return JSONResponse(error_body("RequestValidationError", "JSON nested too deeply", request), 422)
        if isinstance(exc.__cause__, BodyTooLargeError):  # a streamed body outgrew the limit while being parsed
            return JSONResponse(error_body("RequestTooLargeError", str(exc.__cause__), request), 413)
        return JSONResponse(error_body("HTTPError", str(exc.detail), request), exc.status_code)

    @app.exception_handler(RecursionError)
    async def _deep(request: Request, _exc: RecursionError) -> JSONResponse:
        return JSONResponse(error_body("RequestValidationError", "JSON nested too deeply", request), 422)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
        return JSONResponse(error_body("InternalError", "internal error; see the server log", request), 500)


def _describe(err: dict[str, Any]) -> str:
    if err.get("type") == "json_invalid":
        reason = (err.get("ctx") or {}).get("error", "invalid JSON")
        return f"body is not valid JSON: {reason} (at character {err['loc'][-1]})"
    where = ".".join(str(part) for part in err.get("loc", ()) if part != "body") or "body"
    if len(where) > 120:  # a deeply nested value; the full location would dwarf the message
        where = where[:120] + "..."
    return f"{where}: {err.get('msg', 'invalid')}"
