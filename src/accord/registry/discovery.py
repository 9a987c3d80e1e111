"""Finding and announcing services from an application: ``resolve(name)`` and ``register_self()``.

It talks to an accord server's Consul API (``ACCORD_ADDR`` + ``ACCORD_TOKEN``), so an application
pod needs a URL and a token — no database, no Redis. ``resolve`` prefers an operator's pin in KV
(``services/<name>/url``) over the catalog, so traffic can be steered without redeploying; then
it takes healthy instances in turn. Answers are cached for ``ttl`` seconds, and a blocking query
per resolved name drops the cache entry the moment the pin or the healthy set changes, so the TTL
only bounds how long a *lost* watch can leave an answer stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from accord.core import environ
from accord.core.errors import (
    AuthenticationError,
    ConsulApiError,
    PermissionDeniedError,
    ServerUnreachableError,
    ServiceNotFoundError,
)
from accord.registry.durations import format_duration

__all__ = ["DEFAULT_PIN_PREFIX", "Discovery", "Registration", "candidate_urls", "register_self", "resolve"]

log = logging.getLogger("accord.registry")
DEFAULT_TTL_S = 30.0
DEFAULT_PIN_PREFIX = "services/"
WATCH_WAIT = "55s"
_RETRY_S = (0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass
class _Cached:
    urls: list[str]
    at: float
    turn: Iterator[int] = field(default_factory=itertools.count)

    def next_url(self) -> str:
        return self.urls[next(self.turn) % len(self.urls)]


class Discovery:
    """A cache of service URLs fed by an accord server; one per process is plenty."""

    def __init__(
        self,
        addr: str | None = None,
        token: str | None = None,
        *,
        ttl: float = DEFAULT_TTL_S,
        pin_prefix: str = DEFAULT_PIN_PREFIX,
        watch: bool = True,
    ) -> None:
        env = environ.current()
        base = (addr or env.addr or "http://127.0.0.1:8500").rstrip("/")
        if "://" not in base:
            base = "http://" + base
        secret = token or env.token
        headers = {"X-Consul-Token": secret} if secret else {}
        self._addr = base
        self._http = httpx.AsyncClient(base_url=base, headers=headers, timeout=httpx.Timeout(70.0, connect=5.0))
        self._ttl = ttl
        self._pin_prefix = pin_prefix
        self._watch = watch
        self._cache: dict[str, _Cached] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}

    async def __aenter__(self) -> Discovery:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for task in self._watchers.values():
            task.cancel()
        for task in self._watchers.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._watchers.clear()
        await self._http.aclose()

    async def resolve(self, name: str) -> str:
        """A URL for ``name``: the KV pin if set, else the next healthy instance (round robin)."""
        cached = self._cache.get(name)
        if cached is not None and time.monotonic() - cached.at < self._ttl:
            return cached.next_url()
        urls, indexes = await self._lookup(name)
        if not urls:
            raise ServiceNotFoundError(
                f"service {name!r}: no URL at {self._pin_prefix}{name}/url and no healthy instance in the catalog"
            )
        entry = _Cached(urls, time.monotonic())
        self._cache[name] = entry
        if self._watch and name not in self._watchers:
            self._watchers[name] = asyncio.create_task(self._invalidate_on_change(name, indexes))
        return entry.next_url()

    def forget(self, name: str) -> None:
        self._cache.pop(name, None)

    def _paths(self, name: str) -> tuple[str, str]:
        return f"/v1/kv/{self._pin_prefix}{name}/url", f"/v1/health/service/{name}"

    async def _lookup(self, name: str) -> tuple[list[str], dict[str, str]]:
        """The URLs, and the index each answer had: the watch starts there, so a change made between this
        lookup and the watch's first request still invalidates what the lookup cached."""
        pin_path, health_path = self._paths(name)
        pin = await self._get(pin_path, {"raw": ""})
        indexes = {pin_path: pin.headers.get("X-Consul-Index", "0")}
        if pin.status_code == 200 and pin.content.strip():
            return candidate_urls(pin.content, []), indexes
        healthy = await self._get(health_path, {"passing": "1"})
        indexes[health_path] = healthy.headers.get("X-Consul-Index", "0")
        return candidate_urls(None, healthy.json() if healthy.status_code == 200 else []), indexes

    async def _get(self, path: str, params: dict[str, str]) -> httpx.Response:
        try:
            response = await self._http.get(path, params=params)
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"cannot reach the accord server at {self._addr}: {exc}") from None
        if response.status_code == 403:
            denied = PermissionDeniedError if response.text.startswith("Permission denied") else AuthenticationError
            raise denied(f"the accord server refused {path}: {response.text.strip()}")
        return response

    async def _invalidate_on_change(self, name: str, indexes: dict[str, str]) -> None:
        """Block on the pin and on the healthy set; either index moving drops the cache entry."""
        await asyncio.gather(*(self._watch_path(name, path, indexes.get(path, "0")) for path in self._paths(name)))

    async def _watch_path(self, name: str, path: str, index: str) -> None:
        failures = 0
        while True:
            try:
                response = await self._http.get(path, params={"index": index, "wait": WATCH_WAIT})
                answered = response.status_code in (200, 404) and "X-Consul-Index" in response.headers
                failure = "" if answered else f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                failure = str(exc) or type(exc).__name__
            if failure:  # the watch is an optimisation: the TTL still bounds staleness, so back off and retry
                self.forget(name)
                delay = _RETRY_S[min(failures, len(_RETRY_S) - 1)]
                failures += 1
                log.debug("discovery watch of %s failed (%s); retrying in %.1fs", path, failure, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            latest = response.headers["X-Consul-Index"]
            if latest != index:
                self.forget(name)
            # Consul's rule: an index that goes backwards (a restored server) restarts the watch from zero.
            index = latest if _as_int(latest) >= _as_int(index) else "0"


def _as_int(index: str) -> int:
    try:
        return int(index)
    except ValueError:
        return 0


def candidate_urls(pin: bytes | None, healthy: list[dict[str, Any]]) -> list[str]:
    """The URLs a service resolves to: the KV pin alone when set, else each healthy instance's."""
    if pin is not None and pin.strip():
        return [pin.decode("utf-8", "replace").strip()]
    return [_url_of(entry) for entry in healthy]


def _url_of(entry: dict[str, Any]) -> str:
    service = entry.get("Service") or {}
    address = service.get("Address") or (entry.get("Node") or {}).get("Address") or "127.0.0.1"
    return f"http://{address}:{service.get('Port', 0)}"


# ----- announcing this process -----------------------------------------------------------------


@dataclass
class Registration:
    """A registered instance and its heartbeat; leaving the ``async with`` deregisters it."""

    service_id: str
    check_id: str
    _task: asyncio.Task[None] | None = None


@contextlib.asynccontextmanager
async def register_self(
    name: str,
    *,
    port: int,
    address: str | None = None,
    service_id: str | None = None,
    tags: tuple[str, ...] = (),
    ttl: float = 10.0,
    addr: str | None = None,
    token: str | None = None,
) -> AsyncIterator[Registration]:
    """Register this process as an instance of ``name`` with a TTL check it keeps passing.

    Meant for a FastAPI lifespan: the instance is healthy while the process heartbeats (every
    ``ttl/3``), turns critical within ``ttl`` of a hang, and is deregistered on shutdown.
    """
    discovery = Discovery(addr, token, watch=False)
    http = discovery._http
    sid = service_id or f"{name}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    check_id = f"service:{sid}"
    body = {
        "Name": name,
        "ID": sid,
        "Tags": list(tags),
        "Address": address or _own_address(),
        "Port": port,
        "Check": {"TTL": format_duration(ttl), "Status": "passing", "Notes": "accord register_self heartbeat"},
    }
    try:
        await _put(discovery, http, "/v1/agent/service/register", json=body)
        registration = Registration(sid, check_id)
        registration._task = asyncio.create_task(_heartbeat(discovery, http, check_id, ttl / 3))
        try:
            yield registration
        finally:
            registration._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await registration._task
            with contextlib.suppress(ServerUnreachableError):
                await _put(discovery, http, f"/v1/agent/service/deregister/{sid}")
    finally:
        await discovery.aclose()


async def _heartbeat(discovery: Discovery, http: httpx.AsyncClient, check_id: str, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await _put(discovery, http, f"/v1/agent/check/pass/{check_id}", params={"note": "heartbeat"})
        except Exception as exc:  # keep beating: a missed beat only costs health if it lasts a whole TTL
            log.warning("register_self heartbeat for %s failed: %s", check_id, exc)


async def _put(discovery: Discovery, http: httpx.AsyncClient, path: str, **kwargs: Any) -> None:
    try:
        response = await http.put(path, **kwargs)
    except httpx.TransportError as exc:
        raise ServerUnreachableError(f"cannot reach the accord server at {discovery._addr}: {exc}") from None
    if response.status_code == 403:
        raise PermissionDeniedError(f"the accord server refused {path}: {response.text.strip()}")
    if response.status_code != 200:
        raise ConsulApiError(response.status_code, f"the accord server refused {path}: {response.text.strip()}")


def _own_address() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


_default: Discovery | None = None


async def resolve(name: str) -> str:
    """``Discovery().resolve(name)`` on a process-wide instance configured from ``ACCORD_ADDR``/``ACCORD_TOKEN``."""
    global _default
    if _default is None:
        _default = Discovery()
    return await _default.resolve(name)
