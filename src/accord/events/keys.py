"""The event pipeline's Redis names, under the deployment's namespace (core/redis_keys.py)."""

from __future__ import annotations

from dataclasses import dataclass

from accord.core.redis_keys import RedisKeys

__all__ = ["GROUP", "EventKeys"]

GROUP = "accord-events"
FIELD = b"e"


@dataclass(frozen=True)
class EventKeys:
    stream: str
    dlq: str

    @classmethod
    def of(cls, keys: RedisKeys) -> EventKeys:
        return cls(keys.events_stream, keys.events_dlq)  # one slot: the DLQ moves are MULTI over both
