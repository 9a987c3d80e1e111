"""The Redis stage of the producer: pipelined XADD, and memory of what the consumer group has not confirmed.

This machine's Redis (like many) persists nothing, and ``MAXLEN ~`` trims entries still pending
(anchors §2.4, §5). So every event added stays here, with its stream id, until the group has
acknowledged it (below its last-delivered id and below its oldest pending id). A Redis that comes back
with another ``run_id``, a missing stream or group, or a trimmed unconfirmed id makes the stage add
the unconfirmed events again, in order, before any new one (duplicates are absorbed by the table).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import RedisCluster
from redis.exceptions import RedisError, ResponseError

from accord.bus.redis_conn import RedisClient
from accord.bus.redis_conn import redis_client as bus_redis_client
from accord.events.keys import FIELD, GROUP, EventKeys
from accord.events.stats import Counters

__all__ = ["RedisStage", "StageFailedError", "parse_id"]

log = logging.getLogger("accord.events")
SOCKET_TIMEOUT_S = 1.0
BATCH_TIMEOUT_S = 5.0  # one pipelined batch, all of it: Redis that stops answering fails here


class StageFailedError(Exception):
    """Internal: a stage could not take a batch; the pipeline tries the next one."""


def parse_id(value: bytes | str) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def redis_client(url: str, *, read_timeout_s: float | None = SOCKET_TIMEOUT_S) -> RedisClient:
    """A client that fails instead of hanging (no retries inside redis-py: the breaker decides).

    ``read_timeout_s=None`` leaves reads unbounded for a caller that bounds a whole batch itself
    (redis-py's per-reply timeout costs a timer per pipelined command).
    """
    return bus_redis_client(url, socket_timeout=read_timeout_s, socket_connect_timeout=SOCKET_TIMEOUT_S)


async def ensure_group(client: RedisClient, keys: EventKeys) -> None:
    try:
        await client.xgroup_create(keys.stream, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class RedisStage:
    def __init__(
        self,
        url: str,
        keys: Callable[[], Awaitable[EventKeys]],
        counters: Counters,
        *,
        maxlen: int = 1_000_000,
        unconfirmed_max: int = 200_000,
        per_entry: int = 50,
    ) -> None:
        self._client = redis_client(url, read_timeout_s=None)
        self._keys_of = keys
        self._keys: EventKeys | None = None
        self._counters = counters
        self.maxlen = maxlen
        self.unconfirmed_max = unconfirmed_max
        self.per_entry = per_entry
        # (stream id, entry bytes, events in it): an entry holds up to per_entry events, one JSON per line
        self._unconfirmed: deque[tuple[tuple[int, int], bytes, int]] = deque()
        self._unconfirmed_events = 0
        self._run_id: str | None = None
        self._verify = True
        self._force_resend = False
        self.lag = 0

    @property
    def unconfirmed(self) -> int:
        """Events (not entries) added and not yet acknowledged by the group."""
        return self._unconfirmed_events

    def full(self) -> bool:
        return self._unconfirmed_events >= self.unconfirmed_max

    async def deliver(self, payloads: list[bytes]) -> None:
        try:
            keys = await self._resolved()
            if self._verify:
                await self._check_server(keys)
            await self._xadd(keys, payloads)
        except (RedisError, OSError, TimeoutError) as exc:
            await self._reset_connections()
            self._verify = True
            raise StageFailedError(str(exc)) from exc

    async def confirm(self) -> None:
        """Forget what the group acknowledged; re-add what Redis lost."""
        try:
            keys = await self._resolved()
            await self._check_server(keys)
            async with asyncio.timeout(BATCH_TIMEOUT_S):
                await self._forget_confirmed(keys)
        except (RedisError, OSError, TimeoutError) as exc:
            await self._reset_connections()
            self._verify = True
            raise StageFailedError(str(exc)) from exc

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _reset_connections(self) -> None:
        """A batch cut off mid-reply leaves a connection out of step: drop them all, the pool reconnects."""
        if isinstance(self._client, RedisCluster):
            for node in self._client.get_nodes():
                await node.disconnect()
        else:
            await self._client.connection_pool.disconnect()

    async def _resolved(self) -> EventKeys:
        if self._keys is None:
            try:
                self._keys = await self._keys_of()
            except Exception as exc:  # the database that names the stream is down: this stage cannot work yet
                raise StageFailedError(f"cannot name the stream: {exc}") from exc
        return self._keys

    async def _xadd(self, keys: EventKeys, payloads: list[bytes]) -> None:
        """Several events per entry (newline-separated JSON): one XADD carries ``per_entry`` of them."""
        step = self.per_entry
        entries = [
            (b"\n".join(payloads[i : i + step]), len(payloads[i : i + step])) for i in range(0, len(payloads), step)
        ]
        await self._xadd_entries(keys, entries)

    async def _xadd_entries(self, keys: EventKeys, entries: list[tuple[bytes, int]]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for data, _ in entries:
            pipe.xadd(keys.stream, {FIELD: data}, maxlen=self.maxlen, approximate=True)
        async with asyncio.timeout(BATCH_TIMEOUT_S):
            ids = await pipe.execute()
        for entry_id, (data, count) in zip(ids, entries, strict=True):
            self._unconfirmed.append((parse_id(entry_id), data, count))
            self._unconfirmed_events += count

    async def _check_server(self, keys: EventKeys) -> None:
        async with asyncio.timeout(BATCH_TIMEOUT_S):
            info: dict[str, Any] = await self._client.info("server")
            await ensure_group(self._client, keys)
        run_id = str(info.get("run_id", ""))
        lost = self._force_resend or (self._run_id is not None and run_id != self._run_id)
        self._run_id = run_id
        self._verify = False
        if lost and self._unconfirmed:
            log.warning("Redis restarted (new run_id): adding %d unconfirmed events again", len(self._unconfirmed))
            await self._resend(keys)

    async def _resend(self, keys: EventKeys) -> None:
        """Add every unconfirmed event again, in order; cut off midway, the next check starts over."""
        again = list(self._unconfirmed)
        events = self._unconfirmed_events
        self._unconfirmed.clear()
        self._unconfirmed_events = 0
        self._force_resend = True
        done = 0
        try:
            for start in range(0, len(again), 100):
                await self._xadd_entries(keys, [(data, count) for _, data, count in again[start : start + 100]])
                done = start + 100
        except BaseException:
            rest = again[done:]  # their old ids: resent in full once Redis answers
            self._unconfirmed.extend(rest)
            self._unconfirmed_events += sum(count for _, _, count in rest)
            raise
        self._force_resend = False
        self._counters.redelivered += events

    async def _forget_confirmed(self, keys: EventKeys) -> None:
        groups = await self._client.xinfo_groups(keys.stream)
        group = next((g for g in groups if _text(g.get("name")) == GROUP), None)
        if group is None:
            await ensure_group(self._client, keys)
            if self._unconfirmed:
                await self._resend(keys)
            return
        self.lag = int(group.get("lag") or 0)
        last = parse_id(_text(group.get("last-delivered-id")) or "0-0")
        bound = last
        if int(group.get("pending") or 0) > 0:
            summary = await self._client.xpending(keys.stream, GROUP)
            oldest = summary.get("min")
            if oldest:
                bound = min(last, _before(parse_id(oldest)))
        while self._unconfirmed and self._unconfirmed[0][0] <= bound:
            self._unconfirmed_events -= self._unconfirmed.popleft()[2]
        if self._unconfirmed:
            await self._resend_if_trimmed(keys)

    async def _resend_if_trimmed(self, keys: EventKeys) -> None:
        first: Any = await self._client.xrange(keys.stream, count=1)
        if not first or parse_id(first[0][0]) > self._unconfirmed[0][0]:
            log.warning("unconfirmed events are no longer in the stream (trimmed or lost): adding them again")
            await self._resend(keys)


def _before(entry: tuple[int, int]) -> tuple[int, int]:
    ms, seq = entry
    return (ms, seq - 1) if seq else (ms - 1, 2**63)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")
