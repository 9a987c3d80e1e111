"""The fleet view: each long-lived LiveConfig announces itself and the revision it has applied.

Rows live in ``accord_instance`` (``store/instances.py``), outside the revisioned store, so
heartbeats never create revisions. See docs/fleet.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from accord.core import environ
from accord.core.errors import AccordError, InputError, NotAppliedError
from accord.core.version import package_version
from accord.registry.durations import parse_duration
from accord.store.instances import InstanceRow, InstanceStore, instance_store

if TYPE_CHECKING:
    from accord.replica.replica import Replica

log = logging.getLogger("accord.fleet")

HEARTBEAT_S = 3.0
REMOTE_HEARTBEAT_S = 10.0  # a remote client's: each beat is a server's write, and there may be thousands
REPORT_DEBOUNCE_S = 0.2
STALE_AFTER_S = 30.0
EXPIRE_AFTER_S = 300.0
OP_TIMEOUT_S = 2.0
FLEET_ACL_KEY = "fleet/"

__all__ = [
    "FLEET_ACL_KEY",
    "HEARTBEAT_S",
    "REMOTE_HEARTBEAT_S",
    "Announcer",
    "InstanceView",
    "list_instances",
    "parse_wait",
    "service_name",
    "wait_applied",
]


MAX_WAIT_S = 55.0  # under the CLI's 60 s HTTP timeout


def parse_wait(text: str) -> float:
    """A Go duration (``5s``, ``500ms``, ``1m``) or a plain number of seconds, at most 55 s."""
    raw = text.strip()
    try:
        seconds = float(raw) if raw.replace(".", "", 1).isdigit() else parse_duration(raw)
    except (ValueError, AccordError):
        seconds = -1.0
    if not (0 < seconds <= MAX_WAIT_S):
        raise InputError(f"wait {json.dumps(text)} is not a duration up to 55s such as 5s or 500ms")
    return seconds


def service_name() -> str:
    """ACCORD_SERVICE, else the script's file name."""
    return environ.current().service or Path(sys.argv[0] or "python").name or "python"


@dataclass(frozen=True)
class InstanceView:
    row: InstanceRow
    lag: int
    stale: bool

    def as_dict(self) -> dict[str, object]:
        r = self.row
        return {
            "id": r.id,
            "service": r.service,
            "host": r.host,
            "pid": r.pid,
            "version": r.version,
            "applied_revision": r.applied_revision,
            "lag": self.lag,
            "stale": self.stale,
            "started_at": r.started_at.isoformat(),
            "heartbeat_at": r.heartbeat_at.isoformat(),
        }

    def named(self) -> str:
        r = self.row
        return f"{r.service} on {r.host} pid {r.pid} (id {r.id}, applied {r.applied_revision})"


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def list_instances(
    instances: InstanceStore, current_revision: int, *, stale_after_s: float = STALE_AFTER_S
) -> list[InstanceView]:
    now = datetime.now(UTC)
    return [
        InstanceView(
            row,
            max(0, current_revision - row.applied_revision),
            (now - _utc(row.heartbeat_at)).total_seconds() > stale_after_s,
        )
        for row in await instances.list()
    ]


async def wait_applied(
    instances: InstanceStore, revision: int, timeout_s: float, *, poll_s: float = 0.05
) -> list[InstanceView]:
    """Wait until every live instance has applied ``revision``; raise NotAppliedError naming those that had not."""
    deadline = time.monotonic() + timeout_s
    while True:
        behind = [v for v in await list_instances(instances, revision) if not v.stale and v.lag > 0]
        if not behind:
            return []
        if time.monotonic() >= deadline:
            names = "; ".join(v.named() for v in behind)
            raise NotAppliedError(
                f"the change was written (revision {revision}) but {len(behind)} live instance(s) had not applied "
                f"it within {timeout_s:g}s: {names}"
            )
        await asyncio.sleep(poll_s)


class Announcer:
    """Keeps this process's row: applied revision soon after each change, a heartbeat every few seconds."""

    def __init__(
        self,
        replica: Replica,
        *,
        heartbeat_s: float = HEARTBEAT_S,
        debounce_s: float = REPORT_DEBOUNCE_S,
        expire_after_s: float = EXPIRE_AFTER_S,
        instances: InstanceStore | None = None,
    ) -> None:
        """``instances``: where the row goes (a remote client's is a server's, over HTTP); else the database's."""
        self._replica = replica
        self._store: InstanceStore = instances if instances is not None else instance_store(replica.store)
        self._heartbeat_s = heartbeat_s
        self._debounce_s = debounce_s
        self._expire_after_s = expire_after_s
        self.id = str(uuid.uuid4())
        self._started = datetime.now(UTC)
        self._service = service_name()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe = [
            replica.on_change(lambda _change: self._changed.set()),
            replica.on_reload(lambda _revision, _fire: self._changed.set()),
        ]

    async def start(self) -> None:
        try:  # announcing never holds up or fails the process's start
            await asyncio.wait_for(self._report(), OP_TIMEOUT_S)
        except (TimeoutError, AccordError) as exc:
            log.warning("could not announce instance %s yet: %s", self.id, getattr(exc, "detail", "timed out"))
        self._task = asyncio.create_task(self._run(), name=f"accord-fleet-{self.id}")

    def _row(self) -> InstanceRow:
        return InstanceRow(
            self.id,
            self._service[:200],
            socket.gethostname()[:255],
            os.getpid(),
            package_version(),  # cached once per process, not read from the package metadata per report
            self._replica.last_revision,
            self._started,
            datetime.now(UTC),
        )

    async def _report(self) -> None:
        await self._store.upsert(self._row())

    async def _run(self) -> None:
        last_expire = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that lands as the event
                # fires, and this loop would then outlive aclose() forever
                async with asyncio.timeout(self._heartbeat_s):
                    await self._changed.wait()
            self._changed.clear()
            try:
                await self._report()
                if time.monotonic() - last_expire > self._heartbeat_s * 10:
                    last_expire = time.monotonic()
                    await self._store.expire(datetime.now(UTC) - timedelta(seconds=self._expire_after_s))
            except AccordError as exc:
                log.warning("fleet heartbeat failed: %s", exc.detail)
            await asyncio.sleep(self._debounce_s)

    async def aclose(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await asyncio.wait_for(self._store.remove(self.id), OP_TIMEOUT_S)
        except (TimeoutError, AccordError) as exc:  # the row then goes stale and expires
            log.warning("could not remove fleet row %s: %s", self.id, getattr(exc, "detail", "timed out"))
