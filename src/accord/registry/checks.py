"""The probes accord runs for agent checks, worded the way Consul's agent words their results.

HTTP: 2xx is passing, 429 warning, anything else (or a transport error) critical; the request
carries Consul's ``User-Agent`` and ``Accept``, keep-alives are off, redirects are followed unless
``DisableRedirects``, certificates are verified unless ``TLSSkipVerify``. TCP: a connection that
opens is passing. Output is at most 4 KiB of the body (Consul's ``OutputMaxSize``).
See shared/reference/consul-http-api.md §3.

A plain ``http://`` check is sent with h11 over one asyncio connection and reads no more of the
body than the output keeps: about a third of the CPU of an httpx request, which is what bounds how
many checks one leader runs (docs/BENCHMARKS.md, "HTTP checks per second"). HTTPS checks, and
redirects to follow, go through httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import h11
import httpx

__all__ = [
    "CRITICAL",
    "DEFAULT_TIMEOUT_S",
    "OUTPUT_MAX_BYTES",
    "PASSING",
    "WARNING",
    "ProbeResult",
    "Prober",
    "truncate_output",
]

PASSING, WARNING, CRITICAL = "passing", "warning", "critical"
DEFAULT_TIMEOUT_S = 10.0
OUTPUT_MAX_BYTES = 4096
USER_AGENT = "Consul Health Check"
ACCEPT = "text/plain, text/*, */*"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    status: str
    output: str


def truncate_output(text: str, limit: int = OUTPUT_MAX_BYTES) -> str:
    """Consul's cut of a long note or output: the first ``limit`` bytes and how much was captured."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit].decode(errors="ignore") + f" ... (captured {limit} of {len(data)} bytes)"


class Prober:
    """Runs probes on two shared HTTP clients (certificate checks on and off); ``aclose`` when done."""

    def __init__(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)  # Consul disables keep-alives for checks
        self._verifying = httpx.AsyncClient(limits=limits, verify=True)
        self._trusting = httpx.AsyncClient(limits=limits, verify=False)

    async def aclose(self) -> None:
        await self._verifying.aclose()
        await self._trusting.aclose()

    async def run(self, check_type: str, definition: dict[str, Any]) -> ProbeResult:
        timeout = _seconds(definition.get("Timeout")) or DEFAULT_TIMEOUT_S
        if check_type == "http":
            return await self.http(definition, limit_s=timeout)
        if check_type == "tcp":
            return await tcp_probe(str(definition.get("TCP") or ""), limit_s=timeout)
        raise ValueError(f"accord does not run {check_type!r} checks")

    async def http(self, definition: dict[str, Any], *, limit_s: float = DEFAULT_TIMEOUT_S) -> ProbeResult:
        url = str(definition.get("HTTP") or "")
        method = str(definition.get("Method") or "GET").upper()
        headers: list[tuple[str, str]] = [("User-Agent", USER_AGENT), ("Accept", ACCEPT)]
        given = definition.get("Header") or {}
        if isinstance(given, dict):
            named = {str(k).lower() for k in given}
            headers = [(k, v) for k, v in headers if k.lower() not in named]
            for name, values in given.items():
                for value in values if isinstance(values, list) else [values]:
                    headers.append((str(name), str(value)))
        body = str(definition.get("Body") or "").encode()
        follow = not definition.get("DisableRedirects")
        try:
            answer = await _plain_http(method, url, headers, body, limit_s=limit_s, follow=follow)
            if answer is None:
                answer = await self._httpx(definition, method, url, headers, body, limit_s=limit_s, follow=follow)
        except (httpx.TimeoutException, TimeoutError):
            return ProbeResult(
                CRITICAL, f'{method.capitalize()} "{url}": context deadline exceeded (Client.Timeout exceeded)'
            )
        except (httpx.HTTPError, h11.ProtocolError, OSError, ValueError) as exc:
            return ProbeResult(CRITICAL, f'{method.capitalize()} "{url}": {_reason(exc)}')
        code, reason, content = answer
        status = PASSING if 200 <= code < 300 else WARNING if code == 429 else CRITICAL
        text = content[:OUTPUT_MAX_BYTES].decode(errors="replace")
        return ProbeResult(status, f"HTTP {method} {url}: {code} {reason} Output: {text}")

    async def _httpx(
        self,
        definition: dict[str, Any],
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        limit_s: float,
        follow: bool,
    ) -> tuple[int, str, bytes]:
        client = self._trusting if definition.get("TLSSkipVerify") else self._verifying
        request = client.build_request(method, url, headers=headers, content=body or None, timeout=limit_s)
        response = await client.send(request, stream=True, follow_redirects=follow)
        try:
            content = bytearray()
            async for chunk in response.aiter_bytes():
                content += chunk
                if len(content) >= OUTPUT_MAX_BYTES:
                    break
            return response.status_code, response.reason_phrase, bytes(content)
        finally:
            await response.aclose()


async def _plain_http(
    method: str, url: str, headers: list[tuple[str, str]], body: bytes, *, limit_s: float, follow: bool
) -> tuple[int, str, bytes] | None:
    """Status, reason and the first 4 KiB of the body of a plain-http check; None when httpx must do it
    (https, or a redirect to follow)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent = [("Host", parts.netloc.rpartition("@")[2]), *headers, ("Connection", "close")]
    if body:
        sent.append(("Content-Length", str(len(body))))
    async with asyncio.timeout(limit_s):
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
        try:
            conn = h11.Connection(h11.CLIENT)
            writer.write(conn.send(h11.Request(method=method, target=target, headers=sent)) or b"")
            if body:
                writer.write(conn.send(h11.Data(data=body)) or b"")
            writer.write(conn.send(h11.EndOfMessage()) or b"")
            await writer.drain()
            response: h11.Response | None = None
            content = bytearray()
            broken, received = "", 0
            while len(content) < OUTPUT_MAX_BYTES:
                try:
                    event = conn.next_event()
                except h11.RemoteProtocolError as exc:
                    broken = f"malformed HTTP response: {exc}" if received else "EOF"
                    break
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    received += len(data)
                    conn.receive_data(data)
                elif isinstance(event, h11.Response):
                    response = event
                    if follow and 300 <= event.status_code < 400 and _has_location(event):
                        return None
                elif isinstance(event, h11.Data):
                    content += event.data
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
            if response is None:  # Go's words for a connection closed before an answer
                raise ConnectionError(broken or "EOF")
            reason = response.reason.decode("latin-1") or _standard_reason(response.status_code)
            return response.status_code, reason, bytes(content)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _standard_reason(code: int) -> str:
    with contextlib.suppress(ValueError):
        return HTTPStatus(code).phrase
    return ""


def _has_location(response: h11.Response) -> bool:
    return any(name == b"location" for name, _value in response.headers)


async def tcp_probe(address: str, *, limit_s: float = DEFAULT_TIMEOUT_S) -> ProbeResult:
    """Passing if a TCP connection to ``host:port`` opens within ``limit_s`` seconds."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        number = int(port)
    except ValueError:
        return ProbeResult(CRITICAL, f"dial tcp {address}: address {address}: missing port in address")
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, number), limit_s)
    except TimeoutError:
        return ProbeResult(CRITICAL, f"dial tcp {address}: i/o timeout")
    except ConnectionRefusedError:
        return ProbeResult(CRITICAL, f"dial tcp {address}: connect: connection refused")
    except OSError as exc:
        return ProbeResult(CRITICAL, f"dial tcp {address}: {exc.strerror or exc}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ProbeResult(PASSING, f"TCP connect {address}: Success")


def _seconds(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def _reason(exc: BaseException) -> str:
    """The innermost cause's words ("connection refused"), not httpx's wrapper."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    if isinstance(exc, ConnectionRefusedError):
        return "connect: connection refused"
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text or "connection refused" in text:
        return "connect: connection refused"
    return text
