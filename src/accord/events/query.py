"""Reading events back: filters parsed once for the CLI and GET /api/events, and the stats summary."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from accord.core.errors import InputError
from accord.events.reports import read_reports
from accord.store.events import EVENT_COLUMNS, EventFilter, count_by, select_events

__all__ = ["EventQuery", "parse_since", "parse_where", "run_query", "table_stats"]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class EventQuery:
    where: tuple[tuple[str, str], ...] = ()
    since: float | None = None
    limit: int = 100
    scan: int = 10_000


_INTEGER_COLUMNS = frozenset({"status", "seq"})
_INT64 = 2**63


def parse_where(items: list[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--where takes FIELD=VALUE, got {item!r}")
        if "\x00" in item:
            raise InputError("--where cannot hold a NUL character")
        name = name.strip()
        if name in _INTEGER_COLUMNS and not _is_int64(value):
            raise InputError(f"--where {name}= takes an integer, got {value!r}")
        pairs.append((name, value))
    return tuple(pairs)


def _is_int64(text: str) -> bool:
    try:
        return -_INT64 <= int(text) < _INT64
    except ValueError:
        return False


def parse_since(text: str | None, *, now: float | None = None) -> float | None:
    """An ISO time, or a duration back from now (``10m``, ``2h``, ``1d``, ``30s``), as Unix seconds."""
    if not text:
        return None
    match = _DURATION.match(text.strip())
    if match:
        return (now if now is not None else time.time()) - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except (ValueError, OverflowError, OSError):
        raise InputError(f"--since takes an ISO time or a duration like 10m, 2h, 1d; got {text!r}") from None


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InputError(f"--limit must be within 1..{MAX_LIMIT}, got {limit}")
    return limit


async def run_query(engine: AsyncEngine, query: EventQuery) -> list[dict[str, Any]]:
    """Events newest first; column filters in SQL, other fields on the JSON of at most ``scan`` rows."""
    columns = tuple((k, v) for k, v in query.where if k in EVENT_COLUMNS)
    others = [(k, v) for k, v in query.where if k not in EVENT_COLUMNS]
    limit = check_limit(query.limit)
    rows = await select_events(engine, EventFilter(columns, query.since, query.scan if others else limit))
    found: list[dict[str, Any]] = []
    for row in rows:
        event: dict[str, Any] = orjson.loads(row["body"])
        if all(_text(event.get(k)) == v for k, v in others):
            found.append(event)
            if len(found) >= limit:
                break
    return found


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    return orjson.dumps(value).decode()


async def table_stats(engine: AsyncEngine, since: float | None = None) -> dict[str, Any]:
    by_rule = await count_by(engine, "sampling_rule", since)
    by_status = await count_by(engine, "status", since)
    classes: dict[str, int] = {}
    for status, n in by_status.items():
        key = f"{status[0]}xx" if status[:1].isdigit() else "none"
        classes[key] = classes.get(key, 0) + n
    producers = await read_reports(engine)
    return {
        "stored": sum(by_rule.values()),
        "kept_by_rule": by_rule,
        "by_status_class": classes,
        "producers": producers,
    }
