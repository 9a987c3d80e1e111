"""Redis pub/sub change bus: the fastest path, with background reconnect."""

from __future__ import annotations

import contextlib

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from accord.bus.auth import BusAuth, claimed_revision
from accord.bus.reconnect import Connected, ReconnectingListener
from accord.bus.redis_conn import REDIS_DOWN_ERRORS, RedisClient, redact_redis, redis_client
from accord.bus.types import Applied, BusUnavailableError, EventHandler, nothing_applied
from accord.bus.wire import decode_change, encode_change
from accord.core.errors import StoreUnavailableError
from accord.store.types import Change

REDIS_MESSAGE_MAX_BYTES = 64 * 1024


class RedisChangeBus:
    """Publishes on the deployment's channel and listens on it from a background task that reconnects forever.

    The channel name comes from the database (see ``BusAuth``): until the database answers once, the
    listener keeps retrying like after a lost connection.
    """

    def __init__(self, url: str, auth: BusAuth) -> None:
        self.url = url
        self.auth = auth
        self._client = redis_client(url)
        self._sessions = 0
        self._applied: Applied = nothing_applied
        self._listener = ReconnectingListener(
            self._listen_once,
            down_errors=(*REDIS_DOWN_ERRORS, StoreUnavailableError),
            what=f"redis {redact_redis(url)}",
            task_name="accord-redis-bus",
        )

    @property
    def mode(self) -> str:
        return "redis"

    @property
    def connected(self) -> bool:
        return self._listener.connected

    @property
    def listening(self) -> bool:
        """Whether ``start`` ran: a process that only writes (a CLI) publishes without listening."""
        return self._listener.started

    @property
    def degraded(self) -> bool:
        return not self.connected

    @property
    def fallback_active(self) -> bool:
        return False

    @property
    def client(self) -> RedisClient:
        return self._client

    async def start(self, handler: EventHandler, *, applied: Applied = nothing_applied) -> None:
        self._applied = applied
        self._listener.start(handler)

    async def wait_connected(self, wait_s: float) -> bool:
        return await self._listener.wait_connected(wait_s)

    async def publish(self, change: Change) -> None:
        keys = await self.auth.keys()
        message = await self.auth.seal(encode_change(change, max_bytes=REDIS_MESSAGE_MAX_BYTES))
        try:
            await self._client.publish(keys.changes_channel, message)
        except REDIS_DOWN_ERRORS as exc:
            # This message takes the fallback. The listener reports on the connection itself: a pooled
            # connection that went stale across a Redis restart fails once, but must not flag the bus down.
            raise BusUnavailableError(f"redis {redact_redis(self.url)}: {exc}") from exc

    async def aclose(self) -> None:
        await self._listener.aclose()
        await self._client.aclose()

    async def _listen_once(self, connected: Connected, handler: EventHandler) -> None:
        keys = await self.auth.keys()
        pubsub = await self._subscriber()
        try:
            await pubsub.subscribe(keys.changes_channel)
            await connected()
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                claimed = claimed_revision(message["data"])
                if claimed is not None and claimed <= self._applied():
                    continue  # this process's own write coming back, most often: nothing to verify or parse
                body = await self.auth.open(message["data"])
                change = decode_change(body) if body is not None else None
                if change is not None:
                    await handler(change)
        finally:
            with contextlib.suppress(*REDIS_DOWN_ERRORS, RuntimeError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _subscriber(self) -> PubSub:
        """A pub/sub connection; on a cluster to one node, the next one at each reconnect.

        A classic PUBLISH on a cluster reaches every node, so any node will do; moving on after each
        failure means a dead node is left behind even before the client's slot map knows it is dead.
        """
        if not isinstance(self._client, aioredis.RedisCluster):
            return self._client.pubsub(ignore_subscribe_messages=True)
        await self._client.initialize()
        nodes = sorted(self._client.get_primaries(), key=lambda node: node.name)
        self._sessions += 1
        node = nodes[self._sessions % len(nodes)]
        return self._client.pubsub(node=node, ignore_subscribe_messages=True)
