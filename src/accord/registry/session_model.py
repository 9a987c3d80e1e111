"""A Consul session as accord stores it (``registry/session/<id>``), and Consul's create body read into one.

Consul's rules for the body live here: field names are case-insensitive, ``Checks: []`` means no
checks, a ``LockDelay`` below 1000 is seconds (``lockDelayMinThreshold``) and is capped at 60 s,
a TTL is 10 s to 24 h (or none), and every bound check must be registered and not critical.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from accord.core.errors import ConsulApiError, ValidationFailedError
from accord.registry.durations import format_duration, parse_duration
from accord.registry.kvkeys import encode_segment
from accord.store.types import Entry

__all__ = ["CHECK_PREFIX", "SERF_HEALTH", "SESSION_PREFIX", "CheckStatus", "Session", "parse_create", "session_key"]

SESSION_PREFIX = "registry/session/"
CHECK_PREFIX = "registry/check/"
TTL_MULTIPLIER = 2
MIN_TTL_S = 10.0
MAX_TTL_S = 86400.0
DEFAULT_LOCK_DELAY_S = 15.0
MAX_LOCK_DELAY_S = 60.0
LOCK_DELAY_MIN_THRESHOLD_NS = 1000  # Consul: a LockDelay below 1000 (ns) is read as seconds
SERF_HEALTH = "serfHealth"
CheckStatus = Callable[[str], str | None]  # a check's Status, None when it is not registered


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    name: str
    node: str
    lock_delay: float
    behavior: str
    ttl: float | None
    node_checks: list[str]
    service_checks: list[dict[str, str]] | None
    renewed_at: datetime
    entry: Entry | None = None

    def stored(self) -> bytes:
        body = {
            "ID": self.id,
            "Name": self.name,
            "Node": self.node,
            "LockDelay": self.lock_delay,
            "Behavior": self.behavior,
            "TTL": self.ttl,
            "NodeChecks": self.node_checks,
            "ServiceChecks": self.service_checks,
            "RenewedAt": self.renewed_at.isoformat(),
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_entry(cls, entry: Entry) -> Session:
        body = json.loads(entry.value)
        return cls(
            str(body["ID"]),
            str(body.get("Name") or ""),
            str(body["Node"]),
            float(body.get("LockDelay") or 0.0),
            str(body.get("Behavior") or "release"),
            None if body.get("TTL") is None else float(body["TTL"]),
            list(body.get("NodeChecks") or []),
            body.get("ServiceChecks"),
            datetime.fromisoformat(body["RenewedAt"]),
            entry,
        )

    def expires_at(self) -> float | None:
        if not self.ttl:
            return None
        return self.renewed_at.timestamp() + TTL_MULTIPLIER * self.ttl

    def consul_json(self) -> dict[str, Any]:
        entry = self.entry
        return {
            "ID": self.id,
            "Name": self.name,
            "Node": self.node,
            "LockDelay": round(self.lock_delay * 1e9),
            "Behavior": self.behavior,
            "TTL": format_duration(self.ttl) if self.ttl else "",
            "NodeChecks": self.node_checks,
            "ServiceChecks": self.service_checks,
            "CreateIndex": entry.create_revision if entry else 0,
            "ModifyIndex": entry.create_revision if entry else 0,
        }


def session_key(session_id: str) -> str:
    return SESSION_PREFIX + encode_segment(session_id)


def _fields(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ConsulApiError(400, "Request decode failed: json: cannot unmarshal into Go value of type structs.Session")
    return {str(name).lower(): value for name, value in body.items()}


def _lock_delay(value: Any) -> float:
    if value is None:
        return DEFAULT_LOCK_DELAY_S
    try:
        if isinstance(value, bool):
            raise ValidationFailedError("bool")
        ns = float(value) if isinstance(value, int | float) else parse_duration(str(value)) * 1e9
    except ValidationFailedError as exc:
        raise ConsulApiError(400, f"Request decode failed: {exc.detail}") from None
    seconds = ns if ns < LOCK_DELAY_MIN_THRESHOLD_NS else ns / 1e9
    return min(max(seconds, 0.0), MAX_LOCK_DELAY_S)


def _ttl(value: Any) -> float | None:
    if value is None or value == "":
        return None
    text = str(value)
    try:
        seconds = parse_duration(value if isinstance(value, int | float) and not isinstance(value, bool) else text)
    except ValidationFailedError as exc:
        raise ConsulApiError(500, f"Session TTL '{text}' invalid: {exc.detail.removeprefix('duration: ')}") from None
    if seconds == 0:
        return None
    if not MIN_TTL_S <= seconds <= MAX_TTL_S:
        raise ConsulApiError(500, f"Invalid Session TTL '{round(seconds * 1e9)}', must be between [10s=24h0m0s]")
    return seconds


def _check_ids(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConsulApiError(400, f"Request decode failed: {what} must be a list of check IDs")
    return list(value)


def _linked_checks(fields: dict[str, Any], check_status: CheckStatus) -> tuple[list[str], list[dict[str, str]] | None]:
    """The node and service checks a session is bound to; each must be registered and not critical."""
    checks = fields.get("checks")
    node_checks = fields.get("nodechecks")
    if checks is None and node_checks is None:
        ids = [SERF_HEALTH]
    else:
        ids = _check_ids(checks, "Checks") + _check_ids(node_checks, "NodeChecks")
    raw_service = fields.get("servicechecks")
    if raw_service is not None and not isinstance(raw_service, list):
        raise ConsulApiError(400, "Request decode failed: ServiceChecks must be a list")
    service_ids = [str(_fields(item).get("id") or "") for item in raw_service or []]
    for check in [*ids, *service_ids]:
        if check == SERF_HEALTH:
            continue
        status = check_status(check)
        if status is None:
            raise ConsulApiError(500, f"Missing check '{check}' registration")
        if status == "critical":
            raise ConsulApiError(500, f"Check '{check}' is in critical state")
    service = None if raw_service is None else [{"ID": ident, "Namespace": ""} for ident in service_ids]
    return list(dict.fromkeys(ids)), service


def parse_create(body: Any, *, node: str, check_status: CheckStatus) -> Session:
    """A new session from Consul's create body (field names case-insensitive), validated as Consul does."""
    fields = _fields(body)
    given_node = fields.get("node") or node
    if given_node != node:
        raise ConsulApiError(500, f"Missing node registration: node {given_node!r} is not this deployment's node")
    behavior = fields.get("behavior") or "release"
    if behavior not in ("release", "delete"):
        raise ConsulApiError(500, f"Invalid Behavior setting '{behavior}'")
    node_checks, service_checks = _linked_checks(fields, check_status)
    name = fields.get("name") or ""
    if not isinstance(name, str):
        raise ConsulApiError(400, "Request decode failed: Name must be a string")
    return Session(
        str(uuid.uuid4()),
        name,
        node,
        _lock_delay(fields.get("lockdelay")),
        behavior,
        _ttl(fields.get("ttl")),
        node_checks,
        service_checks,
        datetime.now(UTC),
    )
