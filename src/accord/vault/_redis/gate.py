"""The vault's Redis client and when to try it: after a failure, skip it for a growing pause, so an outage
costs one error, not one per call (accord.vault.backends decides what happens meanwhile)."""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from accord.bus.redis_conn import REDIS_DOWN_ERRORS, RedisClient, redact_redis, redis_client
from accord.core.redis_keys import RedisKeys
from accord.store.deployment import redis_keys_of

log = logging.getLogger("accord.vault")
# Any Redis failure (down, timed out, out of memory, read-only replica...) sends the call to the database,
# which is always correct; the warning names the error, so a real fault is not hidden.
REDIS_FAILURES: tuple[type[BaseException], ...] = (*REDIS_DOWN_ERRORS, RedisError)
FIRST_PAUSE_S = 0.2
MAX_PAUSE_S = 5.0


class RedisGate:
    """The vault's Redis client plus its health. Every path that skips Redis falls back to the database.

    Falling back is always safe here: the database decides every get-or-create through its unique
    constraints, and sequences only ever hand out numbers from ranges the database reserved.
    """

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.client: RedisClient | None = redis_client(url) if url else None
        self._retry_at = 0.0
        self._pause = FIRST_PAUSE_S
        self.degraded = False
        self.keys = RedisKeys("")

    async def bind(self, engine: AsyncEngine) -> None:
        """Read the deployment's Redis namespace from its database (call once it is migrated)."""
        self.keys = await redis_keys_of(engine)

    def usable(self) -> RedisClient | None:
        """The client, unless Redis is not configured or is in its pause after a failure."""
        if self.client is None or time.monotonic() < self._retry_at:
            return None
        return self.client

    def failed(self, exc: BaseException) -> None:
        if not self.degraded:
            log.warning(
                "redis %s unavailable, the vault uses the database alone: %s", redact_redis(self.url or ""), exc
            )
        self.degraded = True
        self._retry_at = time.monotonic() + self._pause
        self._pause = min(self._pause * 2, MAX_PAUSE_S)

    def succeeded(self) -> None:
        if self.degraded:
            log.info("redis %s reachable again", redact_redis(self.url or ""))
        self.degraded = False
        self._pause = FIRST_PAUSE_S

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
