"""Redis pub/sub change bus: the fastest path, with background reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis

from accord.bus.redis_conn import REDIS_DOWN_ERRORS, redact_redis, redis_client
from accord.bus.types import BusUnavailableError, EventHandler, Resync
from accord.bus.wire import decode_change, encode_change
from accord.core.redis_keys import CHANGES_CHANNEL
from accord.core.retry import backoff_delays
from accord.store.types import Change

log = logging.getLogger("accord.bus.redis")
REDIS_MESSAGE_MAX_BYTES = 64 * 1024


class RedisChangeBus:
    """Publishes on one channel and listens on it from a background task that reconnects forever."""

    def __init__(self, url: str, *, on_reconnect: EventHandler | None = None) -> None:
        self.url = url
        self._client = redis_client(url)
        self._listener: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self._on_reconnect = on_reconnect

    @property
    def mode(self) -> str:
        return "redis"

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def degraded(self) -> bool:
        return not self.connected

    @property
    def client(self) -> aioredis.Redis:
        return self._client

    async def start(self, handler: EventHandler) -> None:
        self._listener = asyncio.create_task(self._listen_forever(handler), name="accord-redis-bus")

    async def wait_connected(self, wait_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), wait_s)
        return self.connected

    async def publish(self, change: Change) -> None:
        try:
            await self._client.publish(CHANGES_CHANNEL, encode_change(change, max_bytes=REDIS_MESSAGE_MAX_BYTES))
        except REDIS_DOWN_ERRORS as exc:
            self._connected.clear()
            raise BusUnavailableError(f"redis {redact_redis(self.url)}: {exc}") from exc

    async def aclose(self) -> None:
        self._closing = True
        if self._listener:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._client.aclose()

    async def _listen_forever(self, handler: EventHandler) -> None:
        delays = backoff_delays()
        while not self._closing:
            try:
                await self._listen_once(handler)
                delays = backoff_delays()
            except REDIS_DOWN_ERRORS as exc:
                if self._connected.is_set():
                    log.warning("lost redis %s: %s; reconnecting in the background", redact_redis(self.url), exc)
                self._connected.clear()
                await asyncio.sleep(next(delays))

    async def _listen_once(self, handler: EventHandler) -> None:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(CHANGES_CHANNEL)
            if not self._connected.is_set():
                log.info("change bus subscribed on redis %s", redact_redis(self.url))
            self._connected.set()
            await handler(Resync("redis subscribed"))
            if self._on_reconnect:
                await self._on_reconnect(Resync("redis subscribed"))
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                change = decode_change(message["data"])
                if change is not None:
                    await handler(change)
        finally:
            with contextlib.suppress(*REDIS_DOWN_ERRORS, RuntimeError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
