"""The proxy's request handling: mask a request's texts, send it on, and unmask the answer (whole or streamed).

Each request's texts are masked in one vault call before they leave, and the answer gets the
request's own originals back. Every proxy instance on the same database and Redis shares one
vault, so they issue the same token for the same value.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from accord.core.errors import (
    AccordError,
    AuthenticationError,
    PermissionDeniedError,
    StoreUnavailableError,
    UpstreamFailedError,
)
from accord.proxy.dialect import Dialect, StreamRewriter
from accord.proxy.guard import TOKEN_HEADER, ProxyAuth, presented
from accord.proxy.masking import Masking
from accord.proxy.sse import SseEvent, SseParser
from accord.proxy.texts import BadRequestError, Texts, Unmasker, dump_body, parse_body, unmask_body
from accord.proxy.upstream import Answer, Upstream, open_upstream
from accord.vault import InvalidInputError
from accord.vault.types import DEFAULT_SCOPE, check_scope

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_ANSWER_BYTES",
    "MAX_BODY_BYTES",
    "MAX_NEW_MAPPINGS",
    "Closer",
    "MaskingProxy",
    "UpstreamFailedError",
    "VaultOpener",
]

log = logging.getLogger("accord.proxy")

DEFAULT_TIMEOUT_S = 60.0
MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_ANSWER_BYTES = 32 * 1024 * 1024  # a whole answer, or a stream, from the upstream
MAX_NEW_MAPPINGS = 1000  # distinct detected values in one request: each may become a new mapping
# Hop-by-hop headers, and the ones the proxy sets itself; everything else (auth included) goes on as sent.
_NOT_FORWARDED = frozenset(
    {"host", "content-length", "connection", "keep-alive", "proxy-authorization", "proxy-authenticate", "te"}
    | {"trailer", "transfer-encoding", "upgrade", "expect", "accept-encoding", TOKEN_HEADER}
)
_NOT_RETURNED = frozenset(
    {"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive", "date", "server"}
)

Closer = Callable[[], Awaitable[None]]
VaultOpener = Callable[[], Awaitable[Masking]]
AuthOpener = Callable[[], Awaitable[ProxyAuth]]


class MaskingProxy:
    """The request handling behind the app; ``start``/``aclose`` run in the app's lifespan."""

    def __init__(
        self,
        upstream: str,
        *,
        open_vault: VaultOpener,
        scope: str = DEFAULT_SCOPE,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_body: int = MAX_BODY_BYTES,
        max_answer: int = MAX_ANSWER_BYTES,
        max_mappings: int = MAX_NEW_MAPPINGS,
        open_auth: AuthOpener | None = None,
        require_token: bool = False,
    ) -> None:
        """``require_token``: callers must present an accord token; checked by ``open_auth``'s ProxyAuth, or,
        when the vault forwards tokens (remote mode), by the server on every vault call."""
        self.upstream = check_upstream(upstream)
        self.scope = check_scope(scope)
        if not timeout > 0:
            raise InvalidInputError(f"timeout must be > 0 seconds, got {json.dumps(timeout)}")
        self.timeout = timeout
        self.max_body = max_body
        if max_answer < 1 or max_mappings < 1:
            raise InvalidInputError("the answer size and mapping limits must be at least 1")
        self.max_answer = max_answer
        self.max_mappings = max_mappings
        self._open_vault = open_vault
        self._open_auth = open_auth
        self._require_token = require_token
        self._auth: ProxyAuth | None = None
        self._vault: Masking | None = None
        self._upstream: Upstream | None = None

    async def start(self) -> None:
        self._vault = await self._open_vault()
        if self._require_token and not self._vault.forwards_tokens:
            if self._open_auth is None:
                raise InvalidInputError("require_token needs open_auth when the vault does not check tokens")
            self._auth = await self._open_auth()
        self._upstream = open_upstream(self.upstream, self.timeout)

    async def aclose(self) -> None:
        if self._auth is not None:
            await self._auth.aclose()
        if self._upstream is not None:
            await self._upstream.aclose()
        if self._vault is not None:
            await self._vault.aclose()

    @property
    def vault(self) -> Masking:
        assert self._vault is not None, "the proxy has not started"
        return self._vault

    @property
    def client(self) -> Upstream:
        assert self._upstream is not None, "the proxy has not started"
        return self._upstream

    def endpoint(self, dialect: Dialect) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            return await self.handle(request, dialect)

        return handle

    def passthrough(self, dialect: Dialect) -> Callable[[Request], Awaitable[Response]]:
        """A GET sent on as it is (the model list): nothing to mask, the same limits and errors."""

        async def handle(request: Request) -> Response:
            try:
                token = self._authenticate(request)
                if token is not None:  # the server checks the caller's token: an empty mask call
                    await self.vault.mask([], self.scope, max_new=self.max_mappings, token=token)
                deadline = asyncio.get_running_loop().time() + self.timeout
                answer = await self._send("GET", request, b"", deadline)
                response = Response(await self._read(answer, deadline), answer.status_code)
                response.raw_headers += _returned(answer.raw_headers)
                return response
            except (AuthenticationError, PermissionDeniedError) as exc:
                return _denied(dialect, exc)
            except UpstreamFailedError as exc:
                return _error(dialect, exc.status, exc.detail, exc.code)
            except StoreUnavailableError as exc:
                detail = f"the vault is unavailable, nothing was sent: {exc.detail}"
                return _error(dialect, 503, detail, "vault_unavailable")

        return handle

    def _authenticate(self, request: Request) -> str | None:
        """Check the caller here (ProxyAuth), or return its token for the vault's server to check."""
        if self._auth is not None:
            self._auth.check(request)
        elif self._require_token:
            secret = presented(request)
            if secret is None:
                raise AuthenticationError(
                    "this proxy needs an accord token: send 'X-Accord-Token: <token>' (the Authorization header "
                    "goes on to the model API)"
                )
            return secret
        return None

    async def handle(self, request: Request, dialect: Dialect) -> Response:
        try:
            token = self._authenticate(request)
            body, unmasker = await self._masked_body(request, dialect, token)
            deadline = asyncio.get_running_loop().time() + self.timeout
            answer = await self._send("POST", request, body, deadline)
            if log.isEnabledFor(logging.DEBUG):  # request.url builds a URL object: not on every request
                path = request.scope["path"]
                log.debug("%s %s -> %d, %d tokens", dialect.name, path, answer.status_code, len(unmasker.mappings))
            return await self._respond(answer, dialect, unmasker, deadline)
        except (AuthenticationError, PermissionDeniedError) as exc:
            return _denied(dialect, exc)
        except BadRequestError as exc:
            return _error(dialect, exc.status, exc.detail, exc.code)
        except InvalidInputError as exc:
            return _error(dialect, 400, exc.detail, "invalid_text")
        except UpstreamFailedError as exc:
            log.warning("upstream %s: %s", dialect.name, exc.detail)
            return _error(dialect, exc.status, exc.detail, exc.code)
        except StoreUnavailableError as exc:
            detail = f"the vault is unavailable, nothing was sent: {exc.detail}"
            return _error(dialect, 503, detail, "vault_unavailable")
        except AccordError as exc:
            log.error("masking failed: %s", exc.detail)
            return _error(dialect, 503, f"masking failed, nothing was sent: {exc.detail}", "masking_failed")

    async def _respond(self, answer: Answer, dialect: Dialect, unmasker: Unmasker, deadline: float) -> Response:
        """The upstream's answer with the request's originals back: relayed event by event, or read whole."""
        response: Response
        content_type = answer.header(b"content-type")
        if 200 <= answer.status_code < 300 and content_type.startswith("text/event-stream"):
            relay = self._relay(answer, dialect, unmasker)
            # The task closes the upstream answer even if the client left before the relay started.
            response = StreamingResponse(relay, answer.status_code, background=BackgroundTask(answer.aclose))
        else:
            content = await self._read(answer, deadline)
            response = Response(unmask_body(content, content_type, unmasker), answer.status_code)
        response.raw_headers += _returned(answer.raw_headers)
        return response

    async def _masked_body(self, request: Request, dialect: Dialect, token: str | None) -> tuple[bytes, Unmasker]:
        """The body to send upstream, masked; bad input raises before anything reaches the vault."""
        raw = await self._read_request(request)
        parsed = parse_body(raw)
        texts = Texts()
        try:
            dialect.collect(parsed.value, texts)
        except RecursionError:
            raise BadRequestError("the body is nested too deeply") from None
        values = texts.values()
        if values or token is not None:  # with a forwarded token, the (empty) call is the token's check
            masked, mappings = await self.vault.mask(values, self.scope, max_new=self.max_mappings, token=token)
        else:
            masked, mappings = [], {}
        body = dump_body(parsed) if texts.apply(masked) else raw
        return body, Unmasker(self.vault.grammar, mappings)

    async def _read_request(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            raise _too_large(self.max_body)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise _too_large(self.max_body)
            chunks.append(chunk)
        return b"".join(chunks)

    def _target(self, request: Request) -> str:
        """The path and query to send under the upstream's base URL (a base ending in /v1 takes /v1/... once),
        as the caller wrote them (percent-escapes kept)."""
        raw: bytes | None = request.scope.get("raw_path")
        path: str = raw.decode("latin-1") if raw else request.scope["path"]
        if self.upstream.endswith("/v1") and path.startswith("/v1/"):
            path = path[3:]
        query = request.scope["query_string"]
        return path + ("?" + query.decode("latin-1") if query else "")

    async def _send(self, method: str, request: Request, body: bytes, deadline: float) -> Answer:
        """Send and wait for the answer's status and headers, within the timeout."""
        headers = _forwarded(request.headers.raw)
        try:
            async with asyncio.timeout_at(deadline):
                return await self.client.send(method, self._target(request), headers, body)
        except (TimeoutError, httpx.TimeoutException):
            raise self._timed_out() from None
        except httpx.TransportError as exc:
            raise UpstreamFailedError(
                f"the upstream could not be reached ({type(exc).__name__})", status=502, code="upstream_unreachable"
            ) from None

    async def _read(self, answer: Answer, deadline: float) -> bytes:
        """A whole answer, by the same deadline as its headers."""
        try:
            async with asyncio.timeout_at(deadline):
                return await self._read_limited(answer)
        except (TimeoutError, httpx.TimeoutException):
            raise self._timed_out() from None
        except httpx.TransportError as exc:
            raise UpstreamFailedError(
                f"the upstream broke off its answer ({type(exc).__name__})", status=502, code="upstream_broken"
            ) from None
        finally:
            await answer.aclose()

    async def _read_limited(self, answer: Answer) -> bytes:
        declared = answer.header(b"content-length")
        if declared.isdigit() and int(declared) > self.max_answer:
            raise self._answer_too_large()
        chunks: list[bytes] = []
        size = 0
        async for chunk in answer.aiter_bytes():
            size += len(chunk)
            if size > self.max_answer:
                raise self._answer_too_large()
            chunks.append(chunk)
        return b"".join(chunks)

    def _answer_too_large(self) -> UpstreamFailedError:
        return UpstreamFailedError(
            f"the upstream's answer is larger than {self.max_answer} bytes; it was dropped",
            status=502,
            code="upstream_too_large",
        )

    def _timed_out(self) -> UpstreamFailedError:
        return UpstreamFailedError(
            f"the upstream did not answer within {self.timeout:g} s", status=504, code="upstream_timeout"
        )

    async def _relay(self, answer: Answer, dialect: Dialect, unmasker: Unmasker) -> AsyncIterator[bytes]:
        """The upstream's event stream, unmasked event by event (or as it comes, if nothing was masked)."""
        rewriter = dialect.stream(unmasker)
        parser = SseParser()
        size = 0
        try:
            async for chunk in answer.aiter_bytes(each_within_timeout=True):
                size += len(chunk)
                if size > self.max_answer:
                    detail = self._answer_too_large().detail
                    log.warning("upstream %s stream: %s", dialect.name, detail)
                    tail = _encode_all(rewriter.finish()) if unmasker.active else b""
                    yield tail + dialect.error_event(detail, "upstream_too_large").encode()
                    return
                if not unmasker.active:
                    yield chunk
                elif out := _encode(rewriter, parser.feed(chunk)):
                    yield out
            if unmasker.active:
                yield _encode(rewriter, parser.finish()) + _encode_all(rewriter.finish())
        except httpx.TransportError as exc:
            timed_out = isinstance(exc, httpx.TimeoutException)
            detail = f"the upstream sent nothing for {self.timeout:g} s" if timed_out else "the upstream broke off"
            log.warning("upstream %s stream: %s (%s)", dialect.name, detail, type(exc).__name__)
            tail = _encode_all(rewriter.finish()) if unmasker.active else b""
            yield tail + dialect.error_event(detail, "upstream_timeout" if timed_out else "upstream_broken").encode()
        finally:
            await answer.aclose()


def check_upstream(url: str) -> str:
    """The upstream's base URL (``https://api.openai.com``; a trailing ``/v1`` is fine too)."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidInputError(
            f"upstream must be an http(s) URL such as https://api.openai.com, got {json.dumps(url)}"
        )
    return url.rstrip("/")


def _encode(rewriter: StreamRewriter, events: Iterable[SseEvent]) -> bytes:
    return b"".join(out.encode() for event in events for out in rewriter.rewrite(event))


def _encode_all(events: Iterable[SseEvent]) -> bytes:
    return b"".join(event.encode() for event in events)


def _forwarded(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(name, value) for name, value in headers if name.lower().decode("latin-1") not in _NOT_FORWARDED]


def _returned(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` come with lower-case names (Answer.raw_headers)."""
    return [(name, value) for name, value in headers if name.decode("latin-1") not in _NOT_RETURNED]


def _too_large(limit: int) -> BadRequestError:
    return BadRequestError(f"the body is larger than {limit} bytes", status=413, code="request_too_large")


def _denied(dialect: Dialect, exc: AuthenticationError | PermissionDeniedError) -> Response:
    code = "authentication_failed" if isinstance(exc, AuthenticationError) else "permission_denied"
    return _error(dialect, exc.http_status, exc.detail, code)


def _error(dialect: Dialect, status: int, detail: str, code: str) -> Response:
    return JSONResponse(dialect.error_body(status, detail, code), status)
