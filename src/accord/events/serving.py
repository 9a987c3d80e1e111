"""``accord serve --events``: the events consumer inside a server process, started and stopped with it.

The consumer is the same one ``accord events consume`` runs (:class:`~accord.events.consumer.Consumer`),
on its own engine and Redis client, so it cannot starve the server's pool nor be starved by it. It is
attached by wrapping the app's lifespan: it starts after the server's own start-up (migrations done,
deployment id known) and is stopped, its current batch finished, before the server's shutdown.

This module knows nothing of the server (events sits below the shells): it takes any Starlette app and
a function to register a Prometheus collector with.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from prometheus_client.registry import Collector
from starlette.applications import Starlette

from accord.bus.redis_conn import resolve_redis_url
from accord.core import environ
from accord.core.errors import AccordError
from accord.events.consumer import Consumer, ConsumerCollector, ConsumerOptions
from accord.events.factory import DEFAULT_SPOOL_DIR, MigratedEngine, options_from
from accord.events.factory import start as start_pipeline
from accord.events.pipeline import Pipeline, PipelineOptions
from accord.events.sampling import SamplingPolicy
from accord.store.engine import create_engine, resolve_db_url

__all__ = ["ServedConsumer", "attach_consumer", "claim_spool", "per_process"]

log = logging.getLogger("accord.events")
STOP_TIMEOUT_S = 15.0  # a batch in flight is at most one insert and one XACK


def per_process(options: ConsumerOptions) -> ConsumerOptions:
    """Under ``--workers N`` each worker is its own consumer: its name gets the process id.

    A restarted worker then has a new name, so its predecessor's pending entries are claimed after
    ``claim_idle_ms`` (XAUTOCLAIM) instead of being read first; nothing is lost either way.
    """
    return replace(options, name=f"{options.name}-{os.getpid()}")


RELAY_POLICY = SamplingPolicy.of(sample_rate=1.0)  # never consulted: accept() takes events already decided
RELAY_SLOTS = 64


def claim_spool(base: Path) -> tuple[Path, int]:
    """The first ``relay-N`` directory under ``base`` no live process holds (an exclusive flock), and its lock.

    A worker that died leaves its slot free, so the next one to start takes it and replays its spool.
    """
    for n in range(RELAY_SLOTS):
        directory = base / f"relay-{n}"
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return directory, fd
    raise AccordError(f"all {RELAY_SLOTS} relay spool directories under {base} are held by running processes")


@dataclass
class ServedConsumer:
    """One consumer task and the relay of remote producers; ``readiness()`` is what /readyz shows under ``events``."""

    db_url: str | None
    redis_url: str | None
    options: ConsumerOptions
    consumer: Consumer | None = None
    relay: Pipeline | None = None  # POST /api/events hands remote producers' batches to it
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event | None = None
    _migrated: MigratedEngine | None = None
    _spool_lock: int | None = None

    async def start_relay(self) -> Pipeline:
        """The server's own producer: remote producers' batches go on through Redis, the database, its spool."""
        env = environ.current()
        directory, self._spool_lock = claim_spool(Path(env.spool_dir or Path.cwd() / DEFAULT_SPOOL_DIR))
        self.relay = await start_pipeline(
            "accord-relay", self.db_url, self.redis_url, directory, policy=RELAY_POLICY, options=_relay_options(env)
        )
        log.info("events relay spooling to %s", directory)
        return self.relay

    async def start(self) -> Consumer:
        url = resolve_redis_url(self.redis_url)
        if url is None:
            raise AccordError("accord serve --events reads the event stream from Redis: set ACCORD_REDIS_URL")
        self._migrated = MigratedEngine(create_engine(resolve_db_url(self.db_url)))
        try:
            keys = await self._migrated.keys()
        except BaseException:
            await self._migrated.engine.dispose()
            raise
        self.consumer = Consumer.from_url(url, self._migrated.engine, keys, self.options)
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.consumer.run(self._stop), name="accord-events-consumer")
        log.info("events consumer %s started in this server", self.options.name)
        return self.consumer

    async def aclose(self) -> None:
        """Let the current batch finish (insert, then XACK), then close; cancel only past STOP_TIMEOUT_S."""
        if self._stop is not None:
            self._stop.set()
        if self._task is not None:
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await asyncio.shield(self._task)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                log.warning(
                    "events consumer did not stop within %.0fs; cancelled (its batch is re-read)", STOP_TIMEOUT_S
                )
            except Exception:
                log.exception("events consumer had failed")
        if self.consumer is not None:
            await self.consumer.aclose()
        if self._migrated is not None:
            await self._migrated.engine.dispose()
        if self.relay is not None:
            await self.relay.aclose()  # what its stages do not take in time stays in its spool, replayed next start
        if self._spool_lock is not None:
            os.close(self._spool_lock)
            self._spool_lock = None

    def readiness(self, *, detail: bool = False) -> tuple[dict[str, Any], bool]:
        """(what /readyz shows, whether the process is still ready): a dead consumer task, or a relay that is
        losing events (``Pipeline.health``), makes it not ready.

        ``stage`` names where the consumer is: ``consuming`` (stream → database), ``paused`` (Redis or the
        database is away; it retries), ``stopped`` (the task ended: it never does by itself, so that is a bug).
        ``producer`` is the relay's ``health()`` answer (its stage, breakers, buffer and spool fill, dropped).
        """
        answer, ready = self._consumer_readiness(detail=detail)
        if self.relay is not None:
            answer["producer"], relay_ready = self.relay.health()
            if not relay_ready:
                answer |= {"ok": False, "degraded": True}
            ready = ready and relay_ready
        return answer, ready

    def _consumer_readiness(self, *, detail: bool) -> tuple[dict[str, Any], bool]:
        task, consumer = self._task, self.consumer
        if task is None or consumer is None or task.done():
            return {
                "ok": False,
                "degraded": True,
                "role": "consumer",
                "stage": "stopped",
                "consumer": self.options.name,
            }, False
        answer: dict[str, Any] = {"role": "consumer", "consumer": self.options.name}
        if consumer.paused is None:
            answer |= {"ok": True, "degraded": False, "stage": "consuming"}
        else:
            answer |= {"ok": False, "degraded": True, "stage": "paused", "error": consumer.paused[0]}
            if detail:
                answer["detail"] = consumer.paused[1]
        if consumer.status is not None:
            answer |= {
                "lag": consumer.status.lag,
                "pending": consumer.status.pending,
                "dlq": consumer.status.dlq_length,
            }
        return answer, True


def _relay_options(env: environ.Environ) -> PipelineOptions:
    """The pipeline defaults (ACCORD_SPOOL_* applied), with the spool fsynced on every batch: a 200 to a
    remote producer means its events survive this machine's crash too, not only this process's."""
    return replace(options_from(env), spool_fsync="always")


def attach_consumer(
    app: Starlette,
    db_url: str | None,
    redis_url: str | None,
    options: ConsumerOptions,
    *,
    register: Callable[[Collector], None] | None = None,
) -> ServedConsumer:
    """Run a consumer for the app's lifetime; ``app.state.events`` holds it (for /readyz)."""
    served = ServedConsumer(db_url, redis_url, options)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(asgi: Any) -> AsyncIterator[Any]:
        async with inner(asgi) as state:
            consumer = await served.start()
            relay = await served.start_relay()
            if register is not None:
                register(ConsumerCollector(consumer))
                register(relay.collector())
            try:
                yield state
            finally:
                await served.aclose()

    app.router.lifespan_context = lifespan
    app.state.events = served
    return served
