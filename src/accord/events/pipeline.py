"""The pipeline: ``emit`` on the request path, a background batcher delivering through the stages.

``emit`` decides (rules, then the salted hash), stamps the pipeline's fields and appends to the
bounded buffer: no serialisation, no I/O, no await. The batcher (one asyncio task) drains the buffer,
prepares each event (mask, JSON, size cap) and offers the batch to Redis, then the database, then the
spool, each behind its breaker; while the spool holds anything, new batches queue behind it and the
spool is replayed oldest first, so a producer's events arrive in ``seq`` order.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine

from accord.core.errors import AccordError, StoreUnavailableError
from accord.events.breaker import Breaker
from accord.events.buffer import EventBuffer
from accord.events.bulk import insert_rows
from accord.events.context import RequestState, request_state
from accord.events.metrics import EventsCollector
from accord.events.prepare import Preparer
from accord.events.redis_stage import RedisStage, StageFailedError
from accord.events.sampling import PRIORITY_RULES, SamplingPolicy
from accord.events.server_stage import ServerStage
from accord.events.spool import FsyncPolicy, Spool
from accord.events.stats import STAGES, UPPER_STAGES, Counters, PipelineStats
from accord.store.events import EventRow

__all__ = ["NOT_READY_FILL", "Pipeline", "PipelineOptions", "row_of"]

log = logging.getLogger("accord.events")
_current_state = request_state
_crc32 = zlib.crc32
NOT_READY_FILL = 0.9  # buffer or spool this full: the producer is about to shed events, so it is not ready
Event = dict[str, Any]


@dataclass(frozen=True)
class PipelineOptions:
    buffer_events: int = 100_000
    batch_size: int = 500
    flush_interval_s: float = 0.02
    max_event_bytes: int = 64 * 1024
    stream_maxlen: int = 1_000_000  # entries
    events_per_entry: int = 50  # events per stream entry (one JSON per line): one XADD carries them all
    unconfirmed_max: int = 200_000
    confirm_interval_s: float = 1.0
    spool_fsync: FsyncPolicy = "interval"
    spool_max_bytes: int = 256 * 1024 * 1024
    spool_segment_bytes: int = 4 * 1024 * 1024
    loss_window_s: float = 10.0  # health(): not ready while events were shed (buffer, spool cap) this recently
    report_interval_s: float = 5.0  # how often the producer's report row is rewritten (events/reports.py)

    def __post_init__(self) -> None:
        if self.unconfirmed_max >= self.stream_maxlen:
            raise AccordError(
                f"unconfirmed_max ({self.unconfirmed_max}) must be below stream_maxlen ({self.stream_maxlen}): "
                "otherwise trimming removes entries the producer would keep adding again"
            )
        if not self.report_interval_s > 0:
            raise AccordError(f"PipelineOptions.report_interval_s must be > 0, got {self.report_interval_s}")
        for name in ("buffer_events", "batch_size", "max_event_bytes", "unconfirmed_max", "events_per_entry"):
            if getattr(self, name) < 1:
                raise AccordError(f"PipelineOptions.{name} must be >= 1, got {getattr(self, name)}")


def row_of(payload: bytes, event: Mapping[str, Any] | None = None) -> EventRow:
    """The table row of one prepared event (``event`` saves parsing ``payload`` again)."""
    data = event if event is not None else orjson.loads(payload)
    status = data.get("status")
    request_id = data.get("request_id")
    return EventRow(
        event_id=str(data["event_id"])[:200],
        ts=float(data.get("ts") or 0.0),
        service=str(data.get("service") or "")[:200],
        route=str(data.get("route") or "")[:512],
        status=status if type(status) is int else None,
        request_id=str(request_id)[:200] if request_id else None,
        sampling_rule=str(data.get("sampling_rule") or "")[:16],
        producer=str(data.get("producer") or "")[:32],
        seq=int(data.get("seq") or 0),
        body=payload.decode("utf-8"),
    )


class Pipeline:
    def __init__(
        self,
        service: str,
        *,
        policy: SamplingPolicy,
        spool_dir: str | Path,
        database: Callable[[], Awaitable[AsyncEngine]] | None = None,
        redis: RedisStage | None = None,
        server: ServerStage | None = None,
        options: PipelineOptions | None = None,
        counters: Counters | None = None,
    ) -> None:
        self.options = options or PipelineOptions()
        self.service = service
        self.instance = f"{socket.gethostname()}:{os.getpid()}"
        self.producer = os.urandom(8).hex()
        self.counters = counters or Counters()
        self._policy = policy
        self._ids = itertools.count(1)
        self._buffer = EventBuffer(self.options.buffer_events, self.counters)
        self._preparer = Preparer(self.counters, max_event_bytes=self.options.max_event_bytes)
        self._database = database
        self._redis = redis
        self._server = server
        self._breakers = {name: Breaker(name) for name in UPPER_STAGES}
        self._lock = asyncio.Lock()  # the batcher and accept() take turns on the stages and the spool
        o = self.options
        self._spool = Spool(
            spool_dir, fsync=o.spool_fsync, segment_bytes=o.spool_segment_bytes, max_bytes=o.spool_max_bytes
        )
        self._spool_pending = not self._spool.is_empty()
        self._counted_segments: set[str] = set()
        self.active_stage = self.top_stage
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._in_flight = 0
        self._next_confirm = 0.0
        self._closers: list[Any] = []

    # ----- the request path ---------------------------------------------------------------------

    @property
    def policy(self) -> SamplingPolicy:
        return self._policy

    def set_policy(self, policy: SamplingPolicy) -> None:
        self._policy = policy  # one reference swap: a decision sees the old policy or the new one

    def emit(self, event: Mapping[str, Any], *, keep: bool = False) -> bool:
        """Decide and buffer one event; never raises, never waits. True when it was buffered.

        Inside a request of this pipeline the event is held with the request and decided with it.
        The decision reads ``event`` in place; only a kept event is copied (most events are sampled
        out, and copying them cost about a fifth of an emit).
        """
        try:
            state = _current_state()
            if state is not None and state.owner is self and not keep:
                state.extras.append(dict(event))
                return True
            policy = self._policy
            n = next(self._ids)
            if keep:
                return self._stamp(dict(event), "forced", policy, n)
            get = event.get
            rule = policy.rule_for(get("status"), get("error_type"), get("duration_ms"), get("route"))
            if rule is None:
                key = get("request_id")
                if not key:
                    key = f"{self.producer}:{n}"
                elif key.__class__ is not str:
                    key = str(key)
                if _crc32(key.encode(), policy.hash_seed) >= policy.hash_bound:  # policy.hashed_keep, inlined
                    self.counters.sampled_out += 1
                    return False
                rule = "sampled"
            return self._stamp(dict(event), rule, policy, n)
        except Exception:  # a mapping whose keys or values misbehave: counted, never the caller's problem
            self.counters.drop("invalid", "normal")
            return False

    def finish_request(self, state: RequestState) -> None:
        """Called by the middleware at the end of a request: one decision for its event and its extras."""
        event = state.event
        policy = self._policy
        rule = policy.rule_for(
            event.get("status"), event.get("error_type"), event.get("duration_ms"), event.get("route")
        )
        if rule is None and not policy.hashed_keep(str(event["request_id"])):
            self.counters.sampled_out += 1 + len(state.extras)
            return
        chosen = rule or "sampled"
        self._stamp(event, chosen, policy)
        for extra in state.extras:
            extra.setdefault("request_id", event["request_id"])
            self._stamp(extra, chosen, policy)

    def _stamp(self, record: Event, rule: str, policy: SamplingPolicy, n: int | None = None) -> bool:
        n = n if n is not None else next(self._ids)
        record["event_id"] = f"{self.producer}:{n}"
        record["producer"] = self.producer
        record["seq"] = n
        if "ts" not in record:
            record["ts"] = time.time()
        record.setdefault("service", self.service)
        record.setdefault("instance", self.instance)
        priority = rule in PRIORITY_RULES
        record["sample_rate"] = 1.0 if priority else policy.sample_rate
        record["sampling_rule"] = rule
        record["policy_version"] = policy.version
        self.counters.kept[rule] += 1
        return self._buffer.offer(record, priority)

    # ----- the batcher --------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="accord-events-batcher")

    async def _run(self) -> None:
        while True:
            async with self._lock:
                await self._housekeeping()
            batch = self._buffer.take(self.options.batch_size)
            if not batch:
                if self._closing:
                    return
                await asyncio.sleep(self.options.flush_interval_s)
                continue
            self._in_flight = len(batch)
            try:
                prepared = [(e, payload) for e in batch if (payload := self._preparer.prepare(e)) is not None]
                if prepared:
                    async with self._lock:
                        await self._deliver(prepared)
            except Exception:  # a bug or a full disk must not stop the batcher: the batch is counted, not hidden
                log.exception("event batch of %d could not be delivered or spooled; dropped", len(batch))
                self.counters.drop("internal", "priority", len(batch))
                await asyncio.sleep(self.options.flush_interval_s)
            finally:
                self._in_flight = 0
            await asyncio.sleep(0)

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if self._redis is not None and now >= self._next_confirm and self._breakers["redis"].allows():
            self._next_confirm = now + self.options.confirm_interval_s
            try:
                await self._redis.confirm()
            except StageFailedError as exc:
                self._stage_failed("redis", exc)
        if self._spool_pending and self._upper_stage_open():
            await self._replay()

    def _upper_stage_open(self) -> bool:
        if self._server is not None and self._breakers["server"].allows():
            return True
        redis_ok = self._redis is not None and self._breakers["redis"].allows() and not self._redis.full()
        return redis_ok or (self._database is not None and self._breakers["database"].allows())

    async def accept(self, payloads: list[bytes]) -> str:
        """Deliver events another process prepared (a remote producer's batch, relayed by the server) now.

        They take the same way as this pipeline's own: the first stage that takes them, else the spool
        (behind anything already spooled, so a producer's order holds). Returns the stage that took
        them; when it returns, the batch is in Redis, the table or the spool file.
        """
        if self._closing:
            raise StoreUnavailableError("this event pipeline is closing")
        async with self._lock:
            await self._deliver([(None, payload) for payload in payloads])
            return self.active_stage

    async def _deliver(self, prepared: list[tuple[Event, bytes]] | list[tuple[None, bytes]]) -> None:
        if not self._spool_pending and await self._deliver_upper(prepared):
            return
        payloads = [payload for _, payload in prepared]
        await asyncio.to_thread(self._spool.append, payloads)
        self._spool_pending = True
        self.counters.spooled += len(payloads)
        self.counters.delivered["spool"] += len(payloads)
        self._set_active("spool")

    async def _deliver_upper(self, prepared: list[tuple[Event, bytes]] | list[tuple[None, bytes]]) -> bool:
        """The server (remote mode), else Redis, else the database; False when none took the batch."""
        payloads = [payload for _, payload in prepared]
        if self._server is not None and self._breakers["server"].allows():
            try:
                await self._server.deliver(payloads)
            except StageFailedError as exc:
                self._stage_failed("server", exc)
            else:
                return self._stage_ok("server", len(payloads))
        if self._redis is not None and self._breakers["redis"].allows() and not self._redis.full():
            try:
                await self._redis.deliver(payloads)
            except StageFailedError as exc:
                self._stage_failed("redis", exc)
            else:
                return self._stage_ok("redis", len(payloads))
        if self._database is not None and self._breakers["database"].allows():
            try:
                await insert_rows(await self._database(), [row_of(payload, event) for event, payload in prepared])
            except Exception as exc:  # any database failure sends the batch on to the spool
                self._stage_failed("database", exc)
            else:
                return self._stage_ok("database", len(payloads))
        return False

    async def _replay(self) -> None:
        """Send the spool's closed segments, oldest first, through Redis or the database."""
        await asyncio.to_thread(self._spool.rotate)
        for path in self._spool.closed_segments():
            result = await asyncio.to_thread(self._spool.read, path)
            if path.name not in self._counted_segments:
                self._counted_segments.add(path.name)
                self.counters.spool_corrupt += result.corrupt
                self.counters.spool_truncated += result.truncated
            records = result.records
            for start in range(0, len(records), self.options.batch_size):
                chunk: list[tuple[None, bytes]] = [(None, r) for r in records[start : start + self.options.batch_size]]
                if not await self._deliver_upper(chunk):
                    return
            self._spool.remove(path)
            self._counted_segments.discard(path.name)
            self.counters.replayed += len(records)
        self._spool_pending = not self._spool.is_empty()
        self._sync_spool_drops()

    def _sync_spool_drops(self) -> None:
        spool = self._spool
        if spool.dropped_normal or spool.dropped_priority:
            self.counters.drop("spool_full", "normal", spool.dropped_normal)
            self.counters.drop("spool_full", "priority", spool.dropped_priority)
            spool.dropped_normal = spool.dropped_priority = 0

    def _stage_ok(self, stage: str, n: int) -> bool:
        self._breakers[stage].succeeded()
        self.counters.delivered[stage] += n
        self._set_active(stage)
        return True

    def _stage_failed(self, stage: str, exc: BaseException) -> None:
        breaker = self._breakers[stage]
        if breaker.closed:
            log.warning("event stage %s failed, falling back: %s", stage, str(exc).splitlines()[0] if str(exc) else exc)
        breaker.failed()

    def _set_active(self, stage: str) -> None:
        if stage != self.active_stage:
            level = logging.INFO if stage == self.top_stage else logging.WARNING
            log.log(level, "events now go to the %s stage (was %s)", stage, self.active_stage)
            self.active_stage = stage

    # ----- lifecycle and reading ----------------------------------------------------------------

    def add_closer(self, closer: Any) -> None:
        self._closers.append(closer)

    async def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until the buffer and the spool are empty (or ``timeout_s``); True when they are."""
        deadline = time.monotonic() + timeout_s
        while len(self._buffer) or self._in_flight or self._spool_pending:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def aclose(self, timeout_s: float = 10.0) -> None:
        """Deliver what is buffered (spooling what no stage takes within ``timeout_s``), then close."""
        self._closing = True
        if self._task is not None:
            try:
                async with asyncio.timeout(timeout_s):
                    await self._task
            except TimeoutError:
                self._task.cancel()
            rest = self._buffer.take(len(self._buffer))
            payloads = [p for event in rest if (p := self._preparer.prepare(event)) is not None]
            if payloads:
                async with self._lock:  # an accept() already in progress finishes first
                    await asyncio.to_thread(self._spool.append, payloads)
                self.counters.spooled += len(payloads)
        async with self._lock:
            await asyncio.to_thread(self._spool.close)
        if self._redis is not None:
            await self._redis.aclose()
        if self._server is not None:
            await self._server.aclose()
        for closer in reversed(self._closers):
            await closer()

    async def __aenter__(self) -> Pipeline:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    def stream_lag(self) -> int | None:
        """The group's lag as last read by the producer (None without a Redis stage)."""
        return self._redis.lag if self._redis is not None else None

    @property
    def stream_maxlen(self) -> int:
        return self.options.stream_maxlen

    def collector(self) -> Collector:
        """A prometheus-client collector of this pipeline's counters (register it in the app's registry)."""
        return EventsCollector(self)

    def health(self) -> tuple[dict[str, Any], bool]:
        """(what a readiness probe shows, whether the producer is ready): see docs/events.md, "Readiness".

        Not ready only where events are being, or are about to be, lost: the batcher is not running
        (never started, ended, or closed); events were shed for want of room (full buffer, spool cap) or
        a batch failed to spool within ``loss_window_s``; the buffer is at least ``NOT_READY_FILL`` full
        (the next burst is shed); or the spool is at least ``NOT_READY_FILL`` of its cap. Every other
        state, the spool stage included, is ``degraded`` and still ready.
        """
        self._sync_spool_drops()
        top = self.top_stage
        buffered, capacity = len(self._buffer), self._buffer.capacity
        spool_bytes, spool_cap = self._spool.size(), self.options.spool_max_bytes
        buffer_fill, spool_fill = buffered / capacity, spool_bytes / spool_cap
        running = self._task is not None and not self._task.done() and not self._closing
        problems = []
        if not running:
            problems.append("the batcher is not running")
        if buffer_fill >= NOT_READY_FILL:
            problems.append(f"the buffer is {buffer_fill:.0%} full")
        if spool_fill >= NOT_READY_FILL:
            problems.append(f"the spool is at {spool_fill:.0%} of its cap")
        last_loss = self.counters.last_loss
        if last_loss and time.monotonic() - last_loss < self.options.loss_window_s:
            problems.append(f"events were shed {time.monotonic() - last_loss:.1f}s ago")
        ok = not problems and self.active_stage == top
        answer: dict[str, Any] = {
            "ok": ok,
            "degraded": not ok,
            "role": "producer",
            "stage": self.active_stage,
            "breakers": {name: breaker.state() for name, breaker in self._breakers.items() if self._has(name)},
            "buffer": {"events": buffered, "capacity": capacity, "fill": round(buffer_fill, 4)},
            "spool": {"bytes": spool_bytes, "max_bytes": spool_cap, "fill": round(spool_fill, 4)},
            "dropped": sum(self.counters.dropped.values()),
        }
        if problems:
            answer["error"] = "; ".join(problems)
        return answer, not problems

    @property
    def top_stage(self) -> str:
        """The first stage this pipeline has: where events go when nothing is wrong."""
        return next(name for name in STAGES if self._has(name))

    def _has(self, stage: str) -> bool:
        if stage == "server":
            return self._server is not None
        if stage == "redis":
            return self._redis is not None
        if stage == "database":
            return self._database is not None
        return stage == "spool"

    def stats(self) -> PipelineStats:
        c = self.counters
        self._sync_spool_drops()
        return PipelineStats(
            kept=dict(c.kept),
            dropped={f"{reason}/{klass}": n for (reason, klass), n in c.dropped.items()},
            delivered=dict(c.delivered),
            sampled_out=c.sampled_out,
            coerced=c.coerced,
            truncated=c.truncated,
            masked=c.masked,
            spooled=c.spooled,
            replayed=c.replayed,
            redelivered=c.redelivered,
            spool_corrupt=c.spool_corrupt,
            spool_truncated=c.spool_truncated,
            buffered=len(self._buffer),
            unconfirmed=self._redis.unconfirmed if self._redis is not None else 0,
            spool_bytes=self._spool.size(),
            active_stage=self.active_stage,
            policy_version=self._policy.version,
        )
