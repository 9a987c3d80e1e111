"""Redis first, with a fallback bus that is always listening.

Every process listens on the fallback too, so a process that had to publish there (because its
Redis connection was down) still reaches processes whose Redis connection is fine. Receivers
drop the duplicates by revision.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from accord.bus.redis_url import redact_redis
from accord.bus.types import Applied, BusUnavailableError, ChangeBus, EventHandler, nothing_applied
from accord.store.types import Change

if TYPE_CHECKING:
    from accord.bus.redis_bus import RedisChangeBus

log = logging.getLogger("accord.bus")


class FallbackChangeBus:
    def __init__(self, primary: RedisChangeBus, fallback: ChangeBus) -> None:
        self.primary = primary
        self.fallback = fallback

    @property
    def mode(self) -> str:
        return self.primary.mode if self.primary.connected else self.fallback.mode

    @property
    def fallback_active(self) -> bool:
        return not self.primary.connected

    @property
    def degraded(self) -> bool:
        return self.fallback_active or self.fallback.degraded

    async def start(self, handler: EventHandler, *, applied: Applied = nothing_applied) -> None:
        await self.fallback.start(handler, applied=applied)
        await self.primary.start(handler, applied=applied)

    async def wait_connected(self, wait_s: float) -> bool:
        """Whether Redis answered within ``wait_s``; if not, say so once (changes travel on the fallback meanwhile)."""
        if await self.primary.wait_connected(wait_s):
            return True
        log.warning(
            "redis %s is unreachable; propagating through %s and reconnecting in the background",
            redact_redis(self.primary.url),
            self.fallback.mode,
        )
        return False

    async def publish(self, change: Change) -> None:
        # A process that never listens (a CLI write) has no connection state to go by: it tries Redis first.
        if self.primary.connected or not self.primary.listening:
            try:
                await self.primary.publish(change)
                return
            except BusUnavailableError as exc:
                log.warning("publishing on %s instead: %s", self.fallback.mode, exc)
        await self.fallback.publish(change)

    async def aclose(self) -> None:
        await self.primary.aclose()
        await self.fallback.aclose()
