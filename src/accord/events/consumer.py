"""``accord events consume``: the stream into the table, acknowledged only after the commit.

One consumer of the group ``accord-events``. On start it reads its own pending entries (what a
previous run with the same name read and did not acknowledge) before new ones. It claims entries
idle on any consumer for longer than ``claim_idle_ms`` (XAUTOCLAIM), moves entries delivered more than
``max_deliveries`` times to the DLQ, and inserts each batch with ``ON CONFLICT (event_id) DO NOTHING``
in one transaction before XACK, so a kill between the two costs a re-read, never a duplicate row.
An entry that is not a JSON object with a string ``event_id`` (poison) is left unacknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError, ResponseError
from sqlalchemy.ext.asyncio import AsyncEngine

from accord.bus.redis_conn import RedisClient
from accord.core.errors import StoreUnavailableError
from accord.events.bulk import RefusedBatchError, insert_rows
from accord.events.keys import FIELD, GROUP, EventKeys
from accord.events.pipeline import row_of
from accord.events.redis_stage import ensure_group, redis_client
from accord.store.events import EventRow

__all__ = ["Consumer", "ConsumerCollector", "ConsumerOptions", "ConsumerStats", "StreamStatus", "stream_status"]

log = logging.getLogger("accord.events")
Entry = tuple[bytes, dict[bytes, bytes]]
Inserter = Callable[[AsyncEngine, Sequence[EventRow]], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerOptions:
    name: str = field(default_factory=socket.gethostname)
    batch: int = 100  # stream entries per read; each holds up to events_per_entry (50) events
    max_deliveries: int = 5
    claim_idle_ms: int = 30_000
    block_ms: int = 1000


@dataclass
class ConsumerStats:
    inserted_batches: int = 0
    entries: int = 0
    acked: int = 0
    poison_seen: int = 0
    dead_lettered: int = 0
    claimed: int = 0


@dataclass(frozen=True)
class StreamStatus:
    length: int
    lag: int
    pending: int
    dlq_length: int
    consumers: int


async def stream_status(client: RedisClient, keys: EventKeys) -> StreamStatus:
    length = int(await client.xlen(keys.stream))
    dlq = int(await client.xlen(keys.dlq))
    try:
        groups = await client.xinfo_groups(keys.stream)
    except ResponseError:
        groups = []
    group = next((g for g in groups if _text(g.get("name")) == GROUP), {})
    return StreamStatus(
        length, int(group.get("lag") or 0), int(group.get("pending") or 0), dlq, int(group.get("consumers") or 0)
    )


class Consumer:
    def __init__(
        self,
        client: RedisClient,
        engine: AsyncEngine,
        keys: EventKeys,
        options: ConsumerOptions,
        *,
        inserter: Inserter = insert_rows,
    ) -> None:
        self._client = client
        self._inserter = inserter  # bench/events_delivery.py compares the store's executemany with it
        self._engine = engine
        self.keys = keys
        self.options = options
        self.stats = ConsumerStats()
        self._own_cursor: str | None = "0"  # None once our own pending entries were read
        self._claim_cursor = "0-0"
        self._poison: dict[bytes, str] = {}
        self._overlap = False  # set by run(): one batch's insert in flight while the next is read
        self._in_flight: asyncio.Task[None] | None = None
        self._group_ready = False
        self.status: StreamStatus | None = None  # refreshed every few seconds by run(), for the collector
        # why run() is backing off (Redis or the database away): the error's class and first line; None when consuming
        self.paused: tuple[str, str] | None = None

    @classmethod
    def from_url(
        cls,
        redis_url: str,
        engine: AsyncEngine,
        keys: EventKeys,
        options: ConsumerOptions,
        *,
        inserter: Inserter = insert_rows,
    ) -> Consumer:
        client = redis_client(redis_url, read_timeout_s=options.block_ms / 1000 + 2.0)
        return cls(client, engine, keys, options, inserter=inserter)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Consume until ``stop`` is set; Redis or the database going away means a pause, never an exit.

        One batch's insert and XACK run while the next batch is read and decoded (never more than one
        in flight), so waiting on PostgreSQL's commit overlaps the Python work of the next batch. After
        a failure the consumer reads its own pending entries again first (what the failed insert held).
        """
        stop = stop or asyncio.Event()
        self._overlap = True
        try:
            await self._run(stop)
        finally:
            self._overlap = False
            try:
                await self._finish_in_flight()
            except (RedisError, OSError, StoreUnavailableError) as exc:  # its entries stay pending: re-read
                log.warning("event consumer stopped with its last batch unacknowledged: %s", type(exc).__name__)

    async def _run(self, stop: asyncio.Event) -> None:
        delay = 0.2
        next_status = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                await self.step()
                if loop.time() >= next_status:
                    self.status = await stream_status(self._client, self.keys)
                    next_status = loop.time() + 5.0
                delay = 0.2
                self.paused = None
            except (RedisError, OSError, StoreUnavailableError) as exc:
                self._own_cursor = "0"  # what a failed batch held is pending on us: read it first when back
                self.paused = (type(exc).__name__, (str(exc).splitlines() or [""])[0][:300])
                log.warning("event consumer paused %.1fs: %s", delay, str(exc).splitlines()[0] if str(exc) else exc)
                try:
                    async with asyncio.timeout(delay):
                        await stop.wait()
                except TimeoutError:
                    pass
                delay = min(delay * 2, 5.0)

    async def step(self) -> int:
        """One round: own pending (first rounds only), else claimed idle entries, else new ones."""
        if not self._group_ready:
            await ensure_group(self._client, self.keys)
            self._group_ready = True
        try:
            return await self._step()
        except ResponseError as exc:
            if "NOGROUP" in str(exc):  # Redis restarted empty: the group (and the stream) are gone
                self._group_ready = False
            raise

    async def _step(self) -> int:
        if self._own_cursor is not None:
            entries = await self._read(self._own_cursor, block=None)
            if entries:
                self._own_cursor = entries[-1][0].decode()
                return await self._process(entries)
            self._own_cursor = None
        claimed = await self._claim()
        if claimed:
            return await self._process(claimed)
        return await self._process(await self._read(">", block=self.options.block_ms))

    async def _read(self, start: str, *, block: int | None) -> list[Entry]:
        reply: Any = await self._client.xreadgroup(
            GROUP, self.options.name, {self.keys.stream: start}, count=self.options.batch, block=block
        )
        if not reply:
            return []
        _, entries = reply[0]
        return [(i, f) for i, f in entries if f]

    async def _claim(self) -> list[Entry]:
        reply: Any = await self._client.xautoclaim(
            self.keys.stream,
            GROUP,
            self.options.name,
            min_idle_time=self.options.claim_idle_ms,
            start_id=self._claim_cursor,
            count=self.options.batch,
        )
        cursor, entries = reply[0], reply[1]
        self._claim_cursor = _text(cursor) or "0-0"
        entries = [(i, f) for i, f in entries if f]
        if not entries:
            return []
        self.stats.claimed += len(entries)
        return await self._dead_letter_overdue(entries)

    async def _dead_letter_overdue(self, entries: list[Entry]) -> list[Entry]:
        counts = await self._deliveries(entries)
        overdue = [(i, f) for i, f in entries if counts.get(i, 0) > self.options.max_deliveries]
        for entry_id, fields in overdue:
            await self._to_dlq(entry_id, fields, counts[entry_id])
        gone = {i for i, _ in overdue}
        return [(i, f) for i, f in entries if i not in gone]

    async def _deliveries(self, entries: list[Entry]) -> dict[bytes, int]:
        ids = sorted((i for i, _ in entries), key=_id_key)
        rows: Any = await self._client.xpending_range(
            self.keys.stream, GROUP, min=ids[0], max=ids[-1], count=len(ids) + 100, consumername=self.options.name
        )
        return {_bytes(r["message_id"]): int(r["times_delivered"]) for r in rows}

    async def _to_dlq(self, entry_id: bytes, fields: dict[bytes, bytes], deliveries: int) -> None:
        reason = self._poison.pop(entry_id, "not inserted")
        pipe = self._client.pipeline(transaction=True)
        pipe.xadd(
            self.keys.dlq,
            {FIELD: fields.get(FIELD, b""), b"id": entry_id, b"deliveries": str(deliveries), b"error": reason},
        )
        pipe.xack(self.keys.stream, GROUP, entry_id)
        await pipe.execute()
        self.stats.dead_lettered += 1
        log.warning(
            "event stream entry %s moved to the DLQ after %d deliveries: %s", entry_id.decode(), deliveries, reason
        )

    async def _process(self, entries: list[Entry]) -> int:
        if not entries:
            return 0
        decoded = [(entry_id, *self._decode(entry_id, fields)) for entry_id, fields in entries]
        await self._finish_in_flight()
        if self._overlap:
            self._in_flight = asyncio.create_task(self._commit(decoded), name="accord-events-insert")
        else:
            await self._commit(decoded)
        return len(entries)

    async def _finish_in_flight(self) -> None:
        task, self._in_flight = self._in_flight, None
        if task is not None:
            await task

    async def _commit(self, decoded: list[tuple[bytes, list[EventRow], bool]]) -> None:
        """Insert (one transaction), then XACK what was committed and is not poison."""
        done = await self._insert([(entry_id, rows) for entry_id, rows, _ in decoded])
        ackable = [entry_id for entry_id, _, poison in decoded if not poison and entry_id in done]
        if ackable:
            await self._client.xack(self.keys.stream, GROUP, *ackable)
            self.stats.acked += len(ackable)
        self.stats.entries += len(decoded)

    def _decode(self, entry_id: bytes, fields: dict[bytes, bytes]) -> tuple[list[EventRow], bool]:
        """The rows of one entry (one event per line) and whether any line was poison.

        The good lines of a partly bad entry are inserted every time it is delivered (harmless: the
        key), and the entry stays unacknowledged until it reaches the DLQ whole.
        """
        rows: list[EventRow] = []
        poison = False
        for line in (fields.get(FIELD) or b"").split(b"\n"):
            try:
                data: Any = orjson.loads(line)
                if not isinstance(data, dict) or not isinstance(data.get("event_id"), str):
                    raise ValueError("not a JSON object with a string event_id")
                rows.append(row_of(line, data))
            except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
                self._poison[entry_id] = f"{type(exc).__name__}: {exc}"[:300]
                poison = True
        if poison:
            self.stats.poison_seen += 1
        return rows, poison

    async def _insert(self, batch: list[tuple[bytes, list[EventRow]]]) -> set[bytes]:
        """The entries whose rows are committed; a batch the database refuses is retried entry by entry."""
        rows = [row for _, entry_rows in batch for row in entry_rows]
        try:
            await self._inserter(self._engine, rows)
            self.stats.inserted_batches += 1
            return {entry_id for entry_id, _ in batch}
        except RefusedBatchError:
            pass
        done = set()
        for entry_id, entry_rows in batch:
            try:
                await self._inserter(self._engine, entry_rows)
            except RefusedBatchError as exc:
                self._poison[entry_id] = exc.detail
                self.stats.poison_seen += 1
                continue
            done.add(entry_id)
        return done


class ConsumerCollector(Collector):
    """``accord_events_consumer_*`` and the DLQ length, from the consumer's last stream status."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer

    def collect(self) -> Iterator[Metric]:
        status = self._consumer.status
        stats = self._consumer.stats
        yield CounterMetricFamily("accord_events_consumer_entries", "Entries processed.", value=stats.entries)
        yield CounterMetricFamily("accord_events_dead_lettered", "Entries moved to the DLQ.", value=stats.dead_lettered)
        if status is not None:
            yield GaugeMetricFamily("accord_events_consumer_lag", "Entries the group has not read.", value=status.lag)
            yield GaugeMetricFamily("accord_events_consumer_pending", "Entries read, not acked.", value=status.pending)
            yield GaugeMetricFamily("accord_events_dlq_length", "Entries in the DLQ.", value=status.dlq_length)
            yield GaugeMetricFamily("accord_events_stream_length", "Entries in the stream.", value=status.length)


def _id_key(value: bytes) -> tuple[int, int]:
    ms, _, seq = value.decode().partition("-")
    return int(ms), int(seq or 0)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
