"""Library errors to HTTP statuses, and every error body in one shape: {"error": ..., "detail": ...}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from accord.core.errors import AccordError, BodyTooLargeError, InvalidRequestError, RequestTooLargeError
from accord.server.consul import wire

log = logging.getLogger("accord.server")
CONSUL_PATH = "/v1/"  # Consul's API answers errors in Consul's words (plain text), not accord's JSON


def status_for(exc: AccordError) -> int:
    """Each error class carries its status (core/errors.py), so the server and the CLI read one table."""
    return exc.http_status


def error_body(name: str, detail: str, request: Request) -> dict[str, str]:
    return _body(name, detail, getattr(request.state, "request_id", ""))


def _body(name: str, detail: str, request_id: str) -> dict[str, str]:
    return {"error": name, "detail": detail, "request_id": request_id}


def error_answer(exc: AccordError, request_id: str) -> JSONResponse:
    """The answer to an accord error outside /v1/, from the route handlers and the fast paths alike."""
    status = status_for(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(_body(exc.error_code, exc.detail, request_id), status, headers=headers)


def crash_answer(exc: Exception, method: str, path: str, request_id: str) -> JSONResponse:
    """A bug: logged with its traceback, answered without it."""
    log.error("unhandled %s on %s %s", type(exc).__name__, method, path, exc_info=exc)
    return JSONResponse(_body("InternalError", "internal error; see the server log", request_id), 500)


def install(app: FastAPI) -> None:
    @app.exception_handler(AccordError)
    async def _accord(request: Request, exc: AccordError) -> Response:
        if request.url.path.startswith(CONSUL_PATH):
            return wire.error_response(exc)
        return error_answer(exc, getattr(request.state, "request_id", ""))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(_describe(err) for err in exc.errors())
        return _invalid_request(request, problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith(CONSUL_PATH):
            return wire.text_error(exc.status_code, str(exc.detail))
        if isinstance(exc.__cause__, RecursionError):  # FastAPI's body parser gave up on deeply nested JSON
            return _invalid_request(request, "JSON nested too deeply")
        if isinstance(exc.__cause__, BodyTooLargeError):  # a streamed body outgrew the limit while being parsed
            body = error_body(RequestTooLargeError.error_code, str(exc.__cause__), request)
            return JSONResponse(body, RequestTooLargeError.http_status)
        return JSONResponse(error_body("HTTPError", str(exc.detail), request), exc.status_code)

    @app.exception_handler(RecursionError)
    async def _deep(request: Request, _exc: RecursionError) -> JSONResponse:
        return _invalid_request(request, "JSON nested too deeply")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        return crash_answer(exc, request.method, request.url.path, getattr(request.state, "request_id", ""))


def _invalid_request(request: Request, detail: str) -> JSONResponse:
    return JSONResponse(error_body(InvalidRequestError.error_code, detail, request), InvalidRequestError.http_status)


def _describe(err: dict[str, Any]) -> str:
    if err.get("type") == "json_invalid":
        reason = (err.get("ctx") or {}).get("error", "invalid JSON")
        return f"body is not valid JSON: {reason} (at character {err['loc'][-1]})"
    where = ".".join(str(part) for part in err.get("loc", ()) if part != "body") or "body"
    if len(where) > 120:  # a deeply nested value; the full location would dwarf the message
        where = where[:120] + "..."
    return f"{where}: {err.get('msg', 'invalid')}"
