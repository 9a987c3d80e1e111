"""Reading and writing check entries (``registry/check/<id>``): the one place a check's status changes.

A result is written only when it changes what watchers see: the status (with ``CriticalSince`` set
on the way into critical and cleared on the way out), or — for probes run by the leader — the
output alone once the last write of that check is older than ``OUTPUT_WRITE_INTERVAL_S`` (Consul's
``check_update_interval``, 5 min). So an HTTP check whose body carries a timestamp does not wake
every health watcher on every run. Writes are compare-and-set on the entry's version; a lost race
re-reads the entry from the store and tries once more.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from accord.core.errors import ConflictError, ConsulApiError
from accord.registry.checks import truncate_output
from accord.registry.kvkeys import encode_segment
from accord.replica.replica import Replica
from accord.store.types import Change, Entry, PutItem, Timers, WriteContext

__all__ = [
    "CHECK_PREFIX",
    "OUTPUT_WRITE_INTERVAL_S",
    "SERVICE_PREFIX",
    "Check",
    "check_key",
    "find_check",
    "parse_check",
    "record_ttl",
    "ttl_of",
    "with_result",
    "write_result",
]

CHECK_PREFIX = "registry/check/"
SERVICE_PREFIX = "registry/service/"
OUTPUT_WRITE_INTERVAL_S = 300.0
STATUSES = ("passing", "warning", "critical")
TTL_TIMER_PREFIX = "ttl/"  # a TTL check's timer is ttl/<check id>
WRITER = WriteContext("accord health checks", "check")


class Check:
    """One check entry, decoded: its key, version and JSON document."""

    __slots__ = ("doc", "key", "version")

    def __init__(self, key: str, version: int, doc: dict[str, Any]) -> None:
        self.key = key
        self.version = version
        self.doc = doc

    @property
    def id(self) -> str:
        return str(self.doc.get("CheckID") or "")

    @property
    def type(self) -> str:
        return str(self.doc.get("Type") or "").lower()

    @property
    def agent(self) -> bool:
        return bool(self.doc.get("Agent"))

    @property
    def definition(self) -> dict[str, Any]:
        value = self.doc.get("Definition")
        return value if isinstance(value, dict) else {}

    def seconds(self, field: str) -> float | None:
        value = self.definition.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
        return None


def check_key(check_id: str) -> str:
    return CHECK_PREFIX + encode_segment(check_id)


def parse_check(entry: Entry) -> Check | None:
    try:
        doc = json.loads(entry.value)
    except ValueError:
        return None
    return Check(entry.key, entry.version, doc) if isinstance(doc, dict) else None


def find_check(replica: Replica, check_id: str) -> Check | None:
    """The check with ``CheckID`` ``check_id``: at its encoded key, else by its ID among all checks."""
    entry = replica.entry(check_key(check_id))
    if entry is not None and (check := parse_check(entry)) is not None and check.id == check_id:
        return check
    for entry in replica.entries(CHECK_PREFIX):
        check = parse_check(entry)
        if check is not None and check.id == check_id:
            return check
    return None


def with_result(
    doc: dict[str, Any], status: str, output: str, *, write_output: bool, now: datetime | None = None
) -> dict[str, Any] | None:
    """The document with this result, or None when nothing watchers see would change."""
    # a check registered critical without CriticalSince gets it on its first critical result
    status_changed = doc.get("Status") != status or (status == "critical" and not doc.get("CriticalSince"))
    output_changed = doc.get("Output") != output
    if not status_changed and not (output_changed and write_output):
        return None
    new = dict(doc, Status=status, Output=output)
    if status == "critical":
        if doc.get("Status") != "critical" or not doc.get("CriticalSince"):
            new["CriticalSince"] = (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    else:
        new["CriticalSince"] = None
    return new


async def write_result(
    replica: Replica,
    check: Check,
    status: str,
    output: str,
    *,
    write_output: Callable[[Check], bool],
    still_true: Callable[[], Awaitable[bool]] | None = None,
) -> Change | None:
    """Write ``status``/``output`` into ``check`` if it changes anything; None when nothing was written.

    On a compare-and-set conflict the entry is read again from the store and the write tried once
    more (``still_true``, if given, is awaited first and may call the write off by returning False).
    A check deleted meanwhile is left deleted.
    """
    current: Check | None = check
    for attempt in range(2):
        if current is None:
            return None
        new = with_result(current.doc, status, output, write_output=write_output(current))
        if new is None:
            return None
        item = PutItem(current.key, json.dumps(new, separators=(",", ":")).encode(), expect_version=current.version)
        try:
            return (await replica.put_keys([item], ctx=WRITER))[0]
        except ConflictError:
            if attempt:
                raise
            entry = await replica.store.get(current.key)
            current = parse_check(entry) if entry is not None else None
            if still_true is not None and not await still_true():
                return None
    return None


def ttl_of(replica: Replica, check_id: str) -> tuple[Check, float]:
    """A TTL check and its TTL, or Consul's refusal for an unknown or non-TTL check."""
    check = find_check(replica, check_id)
    if check is None:
        raise ConsulApiError(
            404, f'Unknown check ID "{check_id}". Ensure that the check ID is passed, not the check name.'
        )
    ttl = check.seconds("TTL")
    if check.type != "ttl" or ttl is None:
        raise ConsulApiError(500, f'CheckID "{check_id}" does not have associated TTL')
    return check, ttl


async def record_ttl(replica: Replica, timers: Timers, check_id: str, status: str, output: str) -> Change | None:
    """A TTL check's pass/warn/fail/update: restart its timer (every call), write the result if it changed."""
    if status not in STATUSES:
        raise ConsulApiError(400, f"Invalid check status: '{status}'")
    check, ttl = ttl_of(replica, check_id)
    await timers.arm(TTL_TIMER_PREFIX + check_id, ttl)
    return await write_result(replica, check, status, truncate_output(output), write_output=lambda _c: True)
