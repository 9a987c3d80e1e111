"""The JSON form of a Change on the wire (Redis pub/sub and PostgreSQL NOTIFY)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from accord.store.types import Change, Op

PG_NOTIFY_MAX_BYTES = 7900
_REVISION_HEAD = b'{"r":'  # encode_change writes the revision first


def peek_revision(text: bytes, start: int = 0) -> int | None:
    """The revision at the head of an encoded change that begins at ``start``, without parsing the rest."""
    if not text.startswith(_REVISION_HEAD, start):
        return None
    digits_at = start + len(_REVISION_HEAD)
    end = text.find(b",", digits_at, digits_at + 20)
    digits = text[digits_at:end] if end > 0 else b""
    return int(digits) if digits.isdigit() else None


def encode_change(change: Change, *, max_bytes: int) -> str:
    """Serialise a change; the value is left out when it is secret or would exceed ``max_bytes``.

    A receiver that finds ``value_omitted`` fetches the key from the store, so large values and
    secrets never ride on the bus.
    """
    body: dict[str, Any] = {"r": change.revision, "k": change.key, "o": change.op, "v": change.version}
    if change.at is not None:
        body["t"] = round(change.at.timestamp(), 6)  # commit time, so receivers can measure propagation lag
    if change.secret:
        body["s"] = 1
    if change.actor:
        body["a"] = change.actor  # so a replica's copy names the writer, as the store does
    if change.value is not None and not change.secret:
        _put_value(body, change.value)
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    if len(text.encode()) > max_bytes or (change.value is not None and change.secret):
        body.pop("d", None)
        body.pop("b", None)
        if change.op == "put":
            body["om"] = 1
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return text


def decode_change(text: str | bytes) -> Change | None:
    """Parse a wire message; None for anything malformed (a bus must never crash its receiver)."""
    try:
        body = json.loads(text)
        op: Op = "delete" if body["o"] == "delete" else "put"
        value = _get_value(body)
        return Change(
            revision=int(body["r"]),
            key=str(body["k"]),
            op=op,
            version=int(body["v"]),
            value=value,
            secret=bool(body.get("s")),
            actor=str(body.get("a", "")),
            value_omitted=bool(body.get("om")),
            at=datetime.fromtimestamp(float(body["t"]), UTC) if "t" in body else None,
        )
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        return None


def _put_value(body: dict[str, Any], value: bytes) -> None:
    try:
        body["d"] = value.decode()
    except UnicodeDecodeError:
        body["b"] = base64.b64encode(value).decode()


def _get_value(body: dict[str, Any]) -> bytes | None:
    if "d" in body:
        return str(body["d"]).encode()
    if "b" in body:
        return base64.b64decode(body["b"], validate=True)  # corrupt base64 must drop the message, not empty the value
    return None
