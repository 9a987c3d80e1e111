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
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client.registry import Collector
from starlette.applications import Starlette

from accord.bus.redis_conn import resolve_redis_url
from accord.core.errors import AccordError
from accord.events.consumer import Consumer, ConsumerCollector, ConsumerOptions
from accord.events.factory import MigratedEngine
from accord.store.engine import create_engine, resolve_db_url

__all__ = ["ServedConsumer", "attach_consumer", "per_process"]

log = logging.getLogger("accord.events")
STOP_TIMEOUT_S = 15.0  # a batch in flight is at most one insert and one XACK


def per_process(options: ConsumerOptions) -> ConsumerOptions:
    """Under ``--workers N`` each worker is its own consumer: its name gets the process id.

    A restarted worker then has a new name, so its predecessor's pending entries are claimed after
    ``claim_idle_ms`` (XAUTOCLAIM) instead of being read first; nothing is lost either way.
    """
    return replace(options, name=f"{options.name}-{os.getpid()}")


@dataclass
class ServedConsumer:
    """One consumer task; ``readiness()`` is what /readyz shows under ``events``."""

    db_url: str | None
    redis_url: str | None
    options: ConsumerOptions
    consumer: Consumer | None = None
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event | None = None
    _migrated: MigratedEngine | None = None

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

    def readiness(self, *, detail: bool = False) -> tuple[dict[str, Any], bool]:
        """(what /readyz shows, whether the process is still ready): only a dead consumer task makes it not ready.

        ``stage`` names where the consumer is: ``consuming`` (stream → database), ``paused`` (Redis or the
        database is away; it retries), ``stopped`` (the task ended: it never does by itself, so that is a bug).
        """
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
            if register is not None:
                register(ConsumerCollector(consumer))
            try:
                yield state
            finally:
                await served.aclose()

    app.router.lifespan_context = lifespan
    app.state.events = served
    return served
