"""The list of accord servers a remote client talks to: one current server, failover on a transport error.

Calls and the stream share one ``Servers``, so after the stream moves to another server the calls
follow it. A call is tried once on each server before it fails with ``ServerUnreachableError`` (a
``StoreUnavailableError``): a write never waits for a server to come back.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from accord.core.environ import ADDR as ADDR_ENV
from accord.core.environ import TOKEN as TOKEN_ENV
from accord.core.errors import AccordError, EnvironError, RemoteError, ServerUnreachableError, decode
from accord.core.version import package_version

CONNECT_TIMEOUT_S = 2.0
TIMEOUT_S = 30.0
# A 502/503/504 without accord's error body came from a proxy or a dying server, not from accord's answer.
_FAILOVER_STATUSES = (502, 503, 504)


def parse_addresses(addr: str | Sequence[str]) -> list[str]:
    """``"http://a:8500,b:8500"`` or a list → normalized base URLs; a bad one is refused naming it."""
    items = addr.split(",") if isinstance(addr, str) else list(addr)
    found = [_normalized(item) for item in items if item.strip()]
    if not found:
        raise EnvironError(f"{ADDR_ENV} names no server address (expected http://host:port[,...])", variable=ADDR_ENV)
    return found


def _normalized(addr: str) -> str:
    text = addr.strip().rstrip("/")
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        port = 0
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0 or any(c.isspace() for c in text):
        shown = json.dumps(shown_addr(addr))
        raise EnvironError(
            f"{ADDR_ENV} entry {shown} is not a server address: use http(s)://host:port", variable=ADDR_ENV
        )
    return text


def shown_addr(addr: str) -> str:
    """The address without any user:password part, for messages."""
    try:
        parts = urlsplit(addr if "://" in addr else "http://" + addr)
        return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
    except ValueError:
        return "<unparsable address>"


class Servers:
    """The addresses, the one in use, and one HTTP client (a pool per host) for calls and streams."""

    def __init__(self, addresses: Sequence[str], token: str) -> None:
        token = token.strip()
        if not token:
            raise EnvironError(f"remote mode needs a token: pass token= or set {TOKEN_ENV}", variable=TOKEN_ENV)
        if not (token.isascii() and token.isprintable()):
            raise EnvironError(f"{TOKEN_ENV} holds characters an HTTP header cannot carry (it is not shown)")
        self.addresses = list(addresses)
        self.token = token
        self.current = 0
        self.headers = {"User-Agent": f"accord-remote/{package_version()}", "Authorization": f"Bearer {token}"}
        self.tls = _tls(self.addresses)  # one trust store for the calls (httpx) and the stream (event_stream.py)
        self.client = httpx.AsyncClient(
            headers=self.headers,
            timeout=httpx.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            verify=self.tls,
        )

    @property
    def shown(self) -> str:
        return ",".join(shown_addr(a) for a in self.addresses)

    @property
    def base(self) -> str:
        return self.addresses[self.current]

    def fail_over(self) -> str:
        """Move to the next address; returns it."""
        self.current = (self.current + 1) % len(self.addresses)
        return self.base

    async def call(
        self, method: str, path: str, *, params: Any = None, body: object = None, token: str | None = None
    ) -> Any:
        """The JSON answer of the first server that answers (starting with the current one).

        ``token`` replaces this client's own token for the one call (a proxy passing on its caller's)."""
        reasons: list[str] = []
        headers = None if token is None else {"Authorization": f"Bearer {token}"}
        for _ in self.addresses:
            base = self.base
            try:
                response = await self.client.request(method, base + path, params=params, json=body, headers=headers)
            except httpx.TransportError as exc:
                reasons.append(f"{shown_addr(base)}: {_reason(exc)}")
                self.fail_over()
                continue
            if response.status_code in _FAILOVER_STATUSES and not _is_accord_error(response):
                reasons.append(f"{shown_addr(base)}: HTTP {response.status_code}")
                self.fail_over()
                continue
            if response.is_error:
                raise self.error(response, hint=token is None)
            return None if response.status_code == 204 else _json(response, method, path)
        raise ServerUnreachableError(f"cannot reach any accord server ({ADDR_ENV}={self.shown}): {'; '.join(reasons)}")

    def error(self, response: httpx.Response, *, hint: bool = True) -> AccordError:
        """``hint``: a 401 names ACCORD_TOKEN (not when the call carried someone else's token)."""
        token_hint = f" (check {TOKEN_ENV})" if hint else ""
        return decode_error(response, server=shown_addr(str(response.url)), token_hint=token_hint)

    async def aclose(self) -> None:
        await self.client.aclose()


def decode_error(response: httpx.Response, *, server: str, token_hint: str) -> AccordError:
    """An error answer of an accord server decoded into the class the server raised (the one table in
    core/errors.py), so a remote client and the CLI over HTTP raise what a direct call would."""
    name, detail = None, None
    try:
        body = response.json()
        if isinstance(body, dict):
            name, detail = body.get("error"), body.get("detail")
    except ValueError:
        pass
    if not isinstance(detail, str) or not detail:
        detail = f"the server at {server} answered HTTP {response.status_code} {response.reason_phrase}".rstrip()
    if response.status_code == 401:
        detail += token_hint
    return decode(name, detail, response.status_code)


def _is_accord_error(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), str)


def _json(response: httpx.Response, method: str, path: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise RemoteError(
            f"the server answered {method} {path} with something that is not JSON", status=response.status_code
        ) from None


def _reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer in time ({type(exc).__name__})"
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _tls(addresses: Sequence[str]) -> ssl.SSLContext:
    """httpx's default trust store (SSL_CERT_FILE / SSL_CERT_DIR, else certifi's) when any address is
    https; otherwise a context that trusts nothing (never used)."""
    if any(urlsplit(a).scheme == "https" for a in addresses):
        return httpx.create_ssl_context()
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
