"""The server's side of remote producers: a ``POST /api/events`` body checked line by line.

The producer prepared every event (masked, serialised, within the size cap) before it left its
process; the server checks only what its stages rely on — each line a JSON object with a string
``event_id`` within ``MAX_EVENT_BYTES`` — and refuses the whole batch naming the first bad line
(the producer then spools it: a bad batch is kept, never half-taken).
"""

from __future__ import annotations

import orjson

from accord.core.errors import InvalidRequestError

__all__ = ["MAX_BATCH_EVENTS", "MAX_EVENT_BYTES", "parse_batch"]

MAX_BATCH_EVENTS = 10_000
MAX_EVENT_BYTES = 64 * 1024  # PipelineOptions.max_event_bytes' default: what a producer sends at most


def parse_batch(body: bytes) -> list[bytes]:
    """The batch's events, one JSON line each, in order; InvalidRequestError naming the first bad line."""
    lines = [line for line in body.split(b"\n") if line.strip()]
    if not lines:
        raise InvalidRequestError("the body holds no event: send one JSON object per line")
    if len(lines) > MAX_BATCH_EVENTS:
        raise InvalidRequestError(f"{len(lines)} events in one request; at most {MAX_BATCH_EVENTS}")
    for n, line in enumerate(lines, 1):
        if len(line) > MAX_EVENT_BYTES:
            raise InvalidRequestError(f"line {n} is {len(line)} bytes; an event is at most {MAX_EVENT_BYTES}")
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise InvalidRequestError(f"line {n} is not JSON") from None
        if not isinstance(event, dict) or not isinstance(event.get("event_id"), str) or not event["event_id"]:
            raise InvalidRequestError(f"line {n} is not a JSON object with a string event_id")
    return lines
