"""``accord.events.start``: the one place that turns URLs and settings into a running pipeline.

Nothing here waits on a dependency for long: a database or Redis that is down at start only means
the pipeline begins on a lower stage (the spool at worst) and moves up when they answer. The schema
(migration 0009) and the deployment id that names the stream are fetched on first use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from accord.bus.redis_conn import resolve_redis_url
from accord.config.connect import connect
from accord.core import environ
from accord.core.errors import AccordError, InvalidInputError, UnknownSettingError
from accord.events.keys import EventKeys
from accord.events.pipeline import Pipeline, PipelineOptions
from accord.events.redis_stage import RedisStage
from accord.events.reports import Reporter
from accord.events.sampling import SamplingPolicy
from accord.events.server_stage import ServerStage
from accord.events.settings import EventsSettings
from accord.events.stats import Counters
from accord.store.deployment import redis_keys_of
from accord.store.engine import create_engine, resolve_db_url
from accord.store.migrate import upgrade

if TYPE_CHECKING:
    from accord.config.live import LiveConfig

__all__ = ["DEFAULT_SPOOL_DIR", "policy_of", "start"]

log = logging.getLogger("accord.events")
DEFAULT_SPOOL_DIR = "accord-events-spool"


class MigratedEngine:
    """Runs the store's migrations once, the first time the database answers."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._done = False
        self._lock = asyncio.Lock()

    async def ready(self) -> AsyncEngine:
        if not self._done:
            async with self._lock:
                if not self._done:
                    await upgrade(self.engine)
                    self._done = True
        return self.engine

    async def keys(self) -> EventKeys:
        return EventKeys.of(await redis_keys_of(await self.ready()))


def policy_of(live: LiveConfig) -> SamplingPolicy:
    return SamplingPolicy.of(
        critical_routes=live.get("events.critical_routes"),
        slow_ms=live.get("events.slow_ms"),
        sample_rate=live.get("events.sample_rate"),
        salt=live.get("events.salt"),
    )


def follow(pipeline: Pipeline, live: LiveConfig) -> None:
    """Swap in a new policy on every change of ``events.*``."""
    try:
        pipeline.set_policy(policy_of(live))
    except UnknownSettingError:
        raise AccordError(
            "the LiveConfig does not declare the events settings: connect it with groups=[EventsSettings]"
        ) from None
    live.on_change("events.", lambda _change: pipeline.set_policy(policy_of(live)))


async def start(
    service: str | None = None,
    db_url: str | None = None,
    redis_url: str | None = None,
    spool_dir: str | Path | None = None,
    *,
    config: LiveConfig | None = None,
    policy: SamplingPolicy | None = None,
    options: PipelineOptions | None = None,
    database_stage: bool = True,
    addr: str | Sequence[str] | None = None,
    token: str | None = None,
) -> Pipeline:
    """A running pipeline. URLs default to ACCORD_DB_URL / ACCORD_REDIS_URL (then the embedded SQLite file),
    ``spool_dir`` to ACCORD_SPOOL_DIR (then ./accord-events-spool); without ``options``, ACCORD_SPOOL_FSYNC and
    ACCORD_SPOOL_MAX_BYTES set the spool's policy and cap.

    The policy follows ``config`` (a LiveConfig declaring EventsSettings); with neither ``config`` nor a
    static ``policy`` the pipeline opens its own LiveConfig on the same database. ``database_stage=False``
    leaves out the direct-to-database fallback (Redis, then the spool).

    Remote mode (docs/events.md, "Remote producers"): with ``addr`` (one or several comma-separated
    server addresses), or ACCORD_ADDR and ACCORD_TOKEN set and no database or Redis URL given (the
    rule of ``accord.connect``), batches go to an accord server (``POST /api/events``, a token with
    write on ``events/``) and to the local spool while no server takes them; no database, no Redis.
    """
    env = environ.current()
    remote = _remote_addr(addr, db_url, redis_url, env)
    if remote is not None:
        return await _start_remote(service, remote, token or env.token or "", spool_dir, config, policy, options, env)
    migrated = MigratedEngine(create_engine(resolve_db_url(db_url)))
    redis = resolve_redis_url(redis_url)
    opts = options or options_from(env)
    counters = Counters()
    stage = None
    if redis is not None:
        stage = RedisStage(
            redis,
            migrated.keys,
            counters,
            maxlen=opts.stream_maxlen,
            unconfirmed_max=opts.unconfirmed_max,
            per_entry=opts.events_per_entry,
        )
    pipeline = Pipeline(
        service or env.service or "app",
        policy=policy or SamplingPolicy(),
        spool_dir=spool_dir or env.spool_dir or Path.cwd() / DEFAULT_SPOOL_DIR,
        database=migrated.ready if database_stage else None,
        redis=stage,
        options=opts,
        counters=counters,
    )
    pipeline.add_closer(migrated.engine.dispose)
    reporter = Reporter(
        pipeline, migrated.ready, interval_s=opts.report_interval_s
    )  # docs/events.md, "Producer reports"
    pipeline.add_closer(reporter.aclose)  # closers run last first: the row goes before the engine
    if config is not None:
        follow(pipeline, config)
    elif policy is None:
        await _own_config(pipeline, db_url, redis_url)
    pipeline.start()
    reporter.start()
    return pipeline


def _remote_addr(
    addr: str | Sequence[str] | None, db_url: str | None, redis_url: str | None, env: environ.Environ
) -> str | Sequence[str] | None:
    if addr is not None:
        if db_url is not None or redis_url is not None:
            raise InvalidInputError("a remote event producer (addr=) opens no database and no Redis: drop the URLs")
        return addr
    if db_url is None and redis_url is None and env.db_url is None and env.addr is not None and env.token is not None:
        return env.addr
    return None


async def _start_remote(
    service: str | None,
    addr: str | Sequence[str],
    token: str,
    spool_dir: str | Path | None,
    config: LiveConfig | None,
    policy: SamplingPolicy | None,
    options: PipelineOptions | None,
    env: environ.Environ,
) -> Pipeline:
    pipeline = Pipeline(
        service or env.service or "app",
        policy=policy or SamplingPolicy(),
        spool_dir=spool_dir or env.spool_dir or Path.cwd() / DEFAULT_SPOOL_DIR,
        server=ServerStage(addr, token),
        options=options or options_from(env),
    )
    if config is not None:
        follow(pipeline, config)
    elif policy is None:
        try:
            live = await connect(addr=addr, token=token, groups=[EventsSettings], announce=False)
        except AccordError as exc:
            log.warning("events: sampling policy not followed live (%s); using the defaults until restart", exc.detail)
        else:
            follow(pipeline, live)
            pipeline.add_closer(live.aclose)
    pipeline.start()
    return pipeline


def options_from(env: environ.Environ) -> PipelineOptions:
    """The defaults, with ACCORD_SPOOL_FSYNC / ACCORD_SPOOL_MAX_BYTES where set (an explicit ``options`` wins)."""
    changes: dict[str, Any] = {}
    if env.spool_fsync is not None:
        changes["spool_fsync"] = env.spool_fsync
    if env.spool_max_bytes is not None:
        changes["spool_max_bytes"] = env.spool_max_bytes
    return PipelineOptions(**changes)


async def _own_config(pipeline: Pipeline, db_url: str | None, redis_url: str | None) -> None:
    try:
        live = await connect(db_url, redis_url, groups=[EventsSettings], announce=False)
    except AccordError as exc:
        log.warning("events: sampling policy not followed live (%s); using the defaults until restart", exc.detail)
        return
    follow(pipeline, live)
    pipeline.add_closer(live.aclose)
