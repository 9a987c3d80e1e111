"""The commands' backend over HTTP: the /api of an accord server, errors mapped back to library errors."""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

import accord
from accord.cli.backend.types import HISTORY_FIELDS, AuditQuery, Row, Rows, TokenRequest, pick
from accord.core.environ import ADDR as ADDR_ENV
from accord.core.environ import TOKEN as TOKEN_ENV
from accord.core.errors import AccordError, EnvironError, InputError, RemoteError, ServerUnreachableError
from accord.remote.servers import decode_error

if TYPE_CHECKING:
    from accord.cli.progress import Meter

CONNECT_TIMEOUT_S = 5.0
TIMEOUT_S = 60.0
UPLOAD_BATCH = 200
_TIMES = ("at", "created_at", "expires_at")


def normalize_addr(addr: str) -> str:
    """``host:port`` gets ``http://``; anything but http(s)://host[:port] is refused naming the value and
    the variable (exit 2). Credentials in the URL are kept, never shown."""
    text = addr.strip().rstrip("/")
    if "://" not in text:
        text = "http://" + text
    hint = "use http://host:port or https://host[:port]"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise EnvironError(
            f"{ADDR_ENV}={_quoted(addr)} is not a server address: the port must be a number from 1 to 65535; {hint}",
            variable=ADDR_ENV,
        ) from None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host or any(c.isspace() for c in text):
        raise EnvironError(f"{ADDR_ENV}={_quoted(addr)} is not a server address: {hint}", variable=ADDR_ENV)
    if port == 0:
        raise EnvironError(
            f"{ADDR_ENV}={_quoted(addr)} is not a server address: the port must be a number from 1 to 65535",
            variable=ADDR_ENV,
        )
    return text


def _quoted(addr: str) -> str:
    return json.dumps(shown_addr(addr), ensure_ascii=False)


def shown_addr(addr: str) -> str:
    """The address without any user:password part, for messages."""
    try:
        parts = urlsplit(addr if "://" in addr else "http://" + addr)
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:
        return "<unparsable address>"


class HttpBackend:
    def __init__(self, addr: str, token: str | None) -> None:
        self.addr = normalize_addr(addr)
        self._shown = shown_addr(self.addr)
        token = token.strip() if token else None
        self._has_token = bool(token)
        headers = {"User-Agent": f"accord-cli/{accord.__version__}", "Accept": "application/json"}
        if token:
            if not (token.isascii() and token.isprintable()):
                raise InputError(f"{TOKEN_ENV} holds characters an HTTP header cannot carry (it is not shown)")
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.AsyncClient(
            base_url=self.addr,
            headers=headers,
            timeout=httpx.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            verify=_tls_context(self.addr),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    # ----- the Backend protocol -----------------------------------------------------------------

    async def status(self) -> Row:
        ready = await self._call("GET", "/readyz", ok_statuses=(503,))
        listing = await self._call("GET", "/api/config")
        return {
            "server": self._shown,
            "ready": ready.get("ready"),
            "revision": listing["revision"],
            "settings": len(listing["settings"]),
            **ready.get("dependencies", {}),
        }

    async def settings(self, prefix: str) -> Rows:
        listing = await self._call("GET", "/api/config")
        return [row for row in listing["settings"] if row["path"].startswith(prefix)]

    async def setting(self, path: str, *, reveal: bool = False, env: str | None = None) -> Row:
        params = {"reveal": "true"} if reveal else {}
        if env is not None:
            params["env"] = env
        row: Row = await self._call("GET", f"/api/config/{_seg(path)}", params=params or None)
        return row

    async def set_input(
        self,
        path: str,
        raw: str,
        *,
        expect_version: int | None,
        env: str | None = None,
        wait_applied: str | None = None,
    ) -> Row:
        body: dict[str, Any] = {"input": raw}
        if expect_version is not None:
            body["expect_version"] = expect_version
        params = {k: v for k, v in (("env", env), ("wait_applied", wait_applied)) if v is not None}
        row: Row = await self._call("PUT", f"/api/config/{_seg(path)}", json_body=body, params=params or None)
        return row

    async def instances(self) -> Rows:
        rows: Rows = await self._call("GET", "/api/instances")
        return rows

    async def unset(self, path: str, *, env: str | None = None) -> Row:
        params = {"env": env} if env is not None else None
        row: Row = await self._call("DELETE", f"/api/config/{_seg(path)}", params=params)
        return row

    async def history(self, path: str, *, limit: int | None) -> Rows:
        params = {"limit": str(limit)} if limit is not None else None
        rows = await self._call("GET", f"/api/config/{_seg(path)}/history", params=params)
        return [pick(_times(row), HISTORY_FIELDS) for row in rows]

    async def rollback(self, path: str, to_version: int | None, to_revision: int | None = None) -> Row:
        body = {"to_version": to_version} if to_revision is None else {"to_revision": to_revision}
        row: Row = await self._call("POST", f"/api/config/{_seg(path)}/rollback", json_body=body)
        return row

    async def diff(self, from_revision: int, to_revision: int | None) -> Row:
        params = {"from_revision": str(from_revision)}
        if to_revision is not None:
            params["to_revision"] = str(to_revision)
        row: Row = await self._call("GET", "/api/config/diff", params=params)
        return row

    async def export(self, meter: Meter, *, sealed: bool = False) -> AsyncIterator[bytes]:
        meter.start(None, unit="bytes")
        params = {"sealed": "true"} if sealed else None
        try:
            async with self._client.stream("GET", "/api/config/export", params=params) as response:
                if response.is_error:
                    await response.aread()
                    raise self._error(response)
                async for chunk in response.aiter_bytes():
                    meter.advance(len(chunk))
                    yield chunk
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    async def import_values(self, values: Mapping[str, object], *, dry_run: bool, meter: Meter) -> Row:
        meter.start(len(values))
        params = {"dry_run": "true"} if dry_run else None
        headers = {"Content-Type": "application/json"}
        row: Row = await self._call(
            "POST", "/api/config/import", params=params, content=_upload(values, meter), headers=headers
        )
        return row

    async def migrate(self, data: Mapping[str, Any], *, dry_run: bool) -> Row:
        params = {"dry_run": "true"} if dry_run else None
        row: Row = await self._call("POST", "/api/config/migrate", params=params, json_body=dict(data))
        return row

    async def audit(self, query: AuditQuery) -> Rows:
        params = {"prefix": query.prefix, "limit": str(query.limit)}
        if query.actor is not None:
            params["actor"] = query.actor
        if query.action is not None:
            params["action"] = query.action
        if query.since is not None:
            params["since"] = query.since.isoformat()
        return [_times(row) for row in await self._call("GET", "/api/audit", params=params)]

    async def tokens(self) -> Rows:
        return [_times(row) for row in await self._call("GET", "/api/tokens")]

    async def create_token(self, request: TokenRequest) -> Row:
        from accord.auth.policy import parse_rule
        from accord.auth.tokens import check_token_name  # here, not at the top: it loads the store's modules

        # checked here as the token index checks them, so the message is the same as on the database
        check_token_name(request.name)
        for rule in request.rules:
            parse_rule(rule)
        body: dict[str, Any] = {
            "name": request.name,
            "rules": list(request.rules),
            "reveal_secrets": request.reveal_secrets,
        }
        if request.ttl_seconds is not None:
            body["ttl_seconds"] = request.ttl_seconds
        return _times(await self._call("POST", "/api/tokens", json_body=body))

    async def revoke_token(self, name: str) -> Row:
        return _times(await self._call("DELETE", f"/api/tokens/{_seg(name)}"))

    # ----- transport ----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: object = None,
        content: AsyncIterator[bytes] | None = None,
        headers: dict[str, str] | None = None,
        ok_statuses: tuple[int, ...] = (),
    ) -> Any:
        try:
            response = await self._client.request(
                method, path, params=params, json=json_body, content=content, headers=headers
            )
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if response.is_error and response.status_code not in ok_statuses:
            raise self._error(response)
        try:
            return response.json()
        except ValueError:
            raise RemoteError(
                f"the server at {self._shown} answered {method} {path} with something that is not JSON",
                status=response.status_code,
            ) from None

    def _unreachable(self, exc: httpx.TransportError) -> ServerUnreachableError:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if isinstance(exc, httpx.TimeoutException):
            reason = f"no answer in time ({type(exc).__name__})"
        return ServerUnreachableError(f"cannot reach the accord server at {ADDR_ENV}={self._shown}: {reason}")

    def _error(self, response: httpx.Response) -> AccordError:
        hint = f" (check {TOKEN_ENV})" if self._has_token else f" ({TOKEN_ENV} is not set)"
        return decode_error(response, server=self._shown, token_hint=hint)


def _tls_context(addr: str) -> ssl.SSLContext | bool:
    """The system's trust store for https; for plain http a context that trusts nothing.

    Loading the trust store costs a CLI call about 50 ms. Every request goes to ``addr`` and
    redirects are not followed, so a plain-http client never shakes hands; if it ever did, an
    empty context would refuse the certificate rather than accept it.
    """
    if urlsplit(addr).scheme == "https":
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _seg(text: str) -> str:
    return quote(text, safe="")


def _times(row: Row) -> Row:
    """Times arrive as ISO text; parse them so both backends hand the same values to the printers."""
    for name in _TIMES:
        value = row.get(name)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                row[name] = datetime.fromisoformat(value)
    return row


async def _upload(values: Mapping[str, object], meter: Meter) -> AsyncIterator[bytes]:
    """The import body, streamed a batch of keys at a time so the progress bar follows the upload."""
    yield b'{"settings":{'
    batch: list[str] = []
    first = True
    for path, value in values.items():
        batch.append(("" if first else ",") + json.dumps(path) + ":" + json.dumps(value, ensure_ascii=False))
        first = False
        if len(batch) >= UPLOAD_BATCH:
            yield "".join(batch).encode()
            meter.advance(len(batch))
            batch = []
    yield "".join(batch).encode() + b"}}"
    meter.advance(len(batch))
