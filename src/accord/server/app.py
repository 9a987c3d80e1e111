"""The FastAPI application factory behind ``accord serve``."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.routing import BaseRoute

import accord
from accord.auth.policy import MANAGEMENT
from accord.auth.tokens import TokenError, TokenIndex
from accord.config.admin import ConfigAdmin
from accord.config.connect import connect
from accord.config.live import DEFAULT_CHECK_INTERVAL_S
from accord.core import environ
from accord.core.keys import PROFILE_PREFIX
from accord.server import errors
from accord.server.consul.metrics import RegistryCollector
from accord.server.consul.router import consul_routes
from accord.server.consul.state import DEFAULT_ADDRESS, REGISTRY_PREFIXES, ConsulState
from accord.server.docs import docs_router
from accord.server.draining import on_exit_signal
from accord.server.fast_reads import FastReads
from accord.server.fast_writes import FastWrites
from accord.server.metrics import Metrics
from accord.server.middleware import AccordMiddleware
from accord.server.routes import (
    audit,
    config,
    events,
    events_dlq,
    health,
    instances,
    remote,
    remote_stream,
    services,
    tokens,
    ui,
    vault,
    vault_stats,
    watch,
)
from accord.server.state import ServerState
from accord.store.engine import resolve_db_url
from accord.store.types import WriteContext

log = logging.getLogger("accord.server")
DESCRIPTION = """Shared, versioned, live configuration. Every /api route needs a token
(`Authorization: Bearer <token>` or `X-Consul-Token`); /healthz, /readyz and /metrics do not."""


def _announce(secret: str) -> None:
    sys.stdout.write(
        "accord: no tokens existed, so a management token was created. It is shown this once; only its hash "
        f"is stored:\n\n    {secret}\n\n"
    )
    sys.stdout.flush()


def create_app(
    *,
    db_url: str | None = None,
    redis_url: str | None = None,
    check_interval: float = DEFAULT_CHECK_INTERVAL_S,
    announce: Callable[[str], None] = _announce,
    metrics_dir: str | None = None,
    embedded: bool = False,
    listen_addr: str | None = None,
) -> FastAPI:
    """One server process. Several (``--workers`` or replicas) share a database and stay consistent.

    ``embedded`` is the app a CLI command runs in-process on the database (``accord kv`` without
    ACCORD_ADDR): no watching, no first-start token, no leader or checks — only the routes.
    """
    metrics = Metrics(metrics_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        live = await connect(
            resolve_db_url(db_url),  # a server is always on the database, even beside an ACCORD_ADDR
            redis_url,
            actor=f"server@{socket.gethostname()}",
            extra_prefixes=("acl/", PROFILE_PREFIX, *REGISTRY_PREFIXES),  # env/: remote clients' profiles
            use_env=False,
            check_interval=check_interval,
            watch=not embedded,
        )
        index = TokenIndex(live.replica)
        if not embedded:
            await _bootstrap_if_empty(index, announce)
        metrics.watch_status(live.status)
        live.on_bus_change(metrics.observe_change)
        app.state.accord = state = ServerState(live, index, ConfigAdmin(live), metrics)
        address = environ.current().advertise_addr or listen_addr or DEFAULT_ADDRESS
        app.state.consul = consul = ConsulState(live.replica, address)
        metrics.watch(RegistryCollector(live.replica, consul.signal))
        await consul.start(background=not embedded)
        app.state.vault = vault.ServerVault(resolve_db_url(db_url), redis_url)  # opened on first use
        try:
            with on_exit_signal(lambda: _drain(app, state, consul)):
                yield
        finally:
            await app.state.vault.aclose()
            await consul.aclose()
            await live.aclose()

    app = FastAPI(
        title="accord",
        version=accord.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        routes=_routes(),
        redirect_slashes=False,  # Starlette builds that redirect from the Host header, which a client chooses
        docs_url=None,  # served by server/docs.py, without a CDN
        redoc_url=None,
        openapi_url=None,
    )
    app.router.routes.extend(docs_router(app).routes)
    errors.install(app)
    app.add_middleware(
        AccordMiddleware,
        metrics=metrics,
        fast=FastReads(metrics.fast_reads),
        fast_writes=FastWrites(metrics.fast_writes),
    )
    return app


def _routes() -> list[BaseRoute]:
    """Every router's routes, served by the app's own router.

    Not ``include_router``: FastAPI then matches every request through a wrapper per included router,
    which cost about a sixth of a GET's CPU time (docs/BENCHMARKS.md, the server section). The OpenAPI
    document is the same either way: each router carries its error responses itself.
    """
    modules = (
        config,
        watch,
        audit,
        tokens,
        health,
        instances,
        remote,
        remote_stream,
        events,
        ui,
        vault,
        events_dlq,
        services,
        vault_stats,
    )
    ours = [route for module in modules for route in module.router.routes]
    return [*ours, *consul_routes()]


def _drain(app: FastAPI, state: ServerState, consul: ConsulState) -> None:
    """The process is stopping: answer blocking queries now and end every endless stream."""
    consul.signal.drain()
    state.stopping = True
    fan_out: remote_stream.FanOut | None = getattr(app.state, "remote_fan_out", None)
    if fan_out is not None:
        fan_out.wake_all()


async def _bootstrap_if_empty(index: TokenIndex, announce: Callable[[str], None]) -> None:
    if index.list():
        return
    try:
        _token, secret = await index.create("management", MANAGEMENT, ctx=WriteContext("accord serve"))
    except TokenError:
        return  # another server process created it first, and printed it
    announce(secret)
