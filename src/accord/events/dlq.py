"""The dead-letter stream: what the consumer gave up on, listed and sent back on request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accord.bus.redis_conn import RedisClient
from accord.events.keys import FIELD, EventKeys

__all__ = ["DeadLetter", "list_dead", "replay_dead"]


@dataclass(frozen=True)
class DeadLetter:
    dlq_id: str
    original_id: str
    deliveries: int
    error: str
    payload: str


async def list_dead(client: RedisClient, keys: EventKeys, *, limit: int = 100) -> list[DeadLetter]:
    entries: Any = await client.xrange(keys.dlq, count=limit)
    return [_letter(entry_id, fields) for entry_id, fields in entries]


async def replay_dead(client: RedisClient, keys: EventKeys, ids: list[str] | None = None) -> int:
    """Add DLQ entries (all, or those named) back to the stream, then delete them from the DLQ; how many."""
    entries: list[Any] = []
    for entry_id in ids or ["-"]:
        found: Any = await (client.xrange(keys.dlq) if entry_id == "-" else client.xrange(keys.dlq, entry_id, entry_id))
        entries.extend(found)
    for dlq_id, fields in entries:
        pipe = client.pipeline(transaction=True)
        pipe.xadd(keys.stream, {FIELD: fields.get(FIELD, b"")})
        pipe.xdel(keys.dlq, dlq_id)
        await pipe.execute()
    return len(entries)


def _letter(entry_id: bytes, fields: dict[bytes, bytes]) -> DeadLetter:
    return DeadLetter(
        entry_id.decode(),
        fields.get(b"id", b"").decode(),
        int(fields.get(b"deliveries", b"0") or 0),
        fields.get(b"error", b"").decode("utf-8", "replace"),
        fields.get(FIELD, b"").decode("utf-8", "replace"),
    )
