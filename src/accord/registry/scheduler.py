"""The leader's health-check work: probes at each check's interval, TTL expiry, deregister-after reaping.

Runs only while this replica holds the leader lease (``registry/leader.py`` starts and stops it).

- Every agent check (``"Agent": true``) of type http or tcp is probed every ``Interval`` (raised to
  Consul's 1 s minimum), the first probe after a random stagger in [0, Interval). New, changed and
  removed checks are picked up from the replica as their entries change.
- Results are written as ``checkstate`` says: on a status change, or the output alone at most every
  5 minutes, so output-only changes do not wake watchers.
- TTL checks: every second, an agent TTL check whose timer ``ttl/<id>`` expired is marked critical
  with output ``TTL expired``. A TTL check never passed since its registration is timed from when
  the leader first saw it (its timer is armed then, if it has none).
- Deregister-after: every ``reap_interval_s`` (Consul's 30 s), a service with an agent check that
  has been critical (``CriticalSince``) longer than its ``DeregisterCriticalServiceAfter`` is removed
  with all its checks: the checks first, then the service (the store has no batch delete), each a
  compare-and-set delete. Consul's one-minute minimum is applied where checks are registered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from accord.core.errors import AccordError, ConflictError, NotFoundError
from accord.registry.checks import CRITICAL, Prober
from accord.registry.checkstate import (
    CHECK_PREFIX,
    OUTPUT_WRITE_INTERVAL_S,
    SERVICE_PREFIX,
    TTL_TIMER_PREFIX,
    WRITER,
    Check,
    parse_check,
    write_result,
)
from accord.replica.replica import Replica
from accord.store.types import Entry, Timers

__all__ = ["DEFAULT_REAP_INTERVAL_S", "MIN_INTERVAL_S", "TTL_EXPIRED", "TTL_PREFIX", "CheckScheduler"]

log = logging.getLogger("accord.registry.checks")
MIN_INTERVAL_S = 1.0  # Consul's MinInterval: shorter intervals are raised to it
DEFAULT_REAP_INTERVAL_S = 30.0  # Consul's CheckReapInterval
TTL_SWEEP_S = 1.0
TTL_PREFIX = TTL_TIMER_PREFIX
TTL_EXPIRED = "TTL expired"
PROBED_TYPES = ("http", "tcp")


class CheckScheduler:
    def __init__(
        self,
        replica: Replica,
        timers: Timers,
        *,
        reap_interval_s: float = DEFAULT_REAP_INTERVAL_S,
        output_interval_s: float = OUTPUT_WRITE_INTERVAL_S,
    ) -> None:
        self._replica = replica
        self._timers = timers
        self._reap_interval = reap_interval_s
        self._output_interval = output_interval_s
        self._probes: dict[str, tuple[str, asyncio.Task[None]]] = {}  # check key -> (definition fingerprint, task)
        self._ttl_ids: dict[str, str] = {}  # key -> id of the TTL checks seen, to disarm their timers on delete
        self._last_write: dict[str, float] = {}  # check key -> monotonic time of this leader's last write
        self._loops: list[asyncio.Task[None]] = []
        self._side: set[asyncio.Task[None]] = set()
        self._unsubscribe: list[Callable[[], None]] = []
        self._prober: Prober | None = None
        self.running = False

    async def start(self) -> None:
        if self.running:
            return
        self.running = True
        self._prober = Prober()
        self._last_write.clear()
        unsubscribe = self._replica.on_entry(self._on_entry)
        self._unsubscribe = [unsubscribe]
        for entry in self._replica.entries(CHECK_PREFIX):
            self._on_entry(entry.key, entry)
        self._loops = [
            asyncio.create_task(self._ttl_loop(), name="accord-ttl-checks"),
            asyncio.create_task(self._reap_loop(), name="accord-check-reaper"),
        ]

    async def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        tasks = [*self._loops, *(task for _fp, task in self._probes.values()), *self._side]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loops, self._probes, self._side = [], {}, set()
        if self._prober is not None:
            await self._prober.aclose()
            self._prober = None

    # ----- following the entries ----------------------------------------------------------------

    def _on_entry(self, key: str, entry: Entry | None) -> None:
        if not self.running or not key.startswith(CHECK_PREFIX):
            return
        check = parse_check(entry) if entry is not None else None
        if check is not None and check.agent and check.type in PROBED_TYPES:
            fingerprint = json.dumps([check.type, check.definition], sort_keys=True, default=str)
            running = self._probes.get(key)
            if running is not None and running[0] == fingerprint and not running[1].done():
                return
            if running is not None:
                running[1].cancel()
            task = asyncio.create_task(self._probe_forever(key, check), name=f"accord-check-{check.id}")
            self._probes[key] = (fingerprint, task)
            return
        running = self._probes.pop(key, None)
        if running is not None:
            running[1].cancel()
        if check is not None and check.agent and check.type == "ttl":
            ttl = check.seconds("TTL")
            if key not in self._ttl_ids and ttl is not None:
                self._spawn(self._timers.arm_absent(TTL_PREFIX + check.id, ttl))
            self._ttl_ids[key] = check.id
            return
        gone = self._ttl_ids.pop(key, None)
        if gone is not None and check is None:
            self._spawn(self._timers.disarm(TTL_PREFIX + gone))
        if check is None:
            self._last_write.pop(key, None)

    def _spawn(self, work: Awaitable[object]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception as exc:
                log.warning("timer update failed: %s", exc)

        task = asyncio.create_task(run())
        self._side.add(task)
        task.add_done_callback(self._side.discard)

    # ----- probes ---------------------------------------------------------------------------------

    async def _probe_forever(self, key: str, check: Check) -> None:
        interval = max(check.seconds("Interval") or MIN_INTERVAL_S, MIN_INTERVAL_S)
        await asyncio.sleep(random.uniform(0, interval))
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            assert self._prober is not None
            result = await self._prober.run(check.type, check.definition)
            entry = self._replica.entry(key)
            current = parse_check(entry) if entry is not None else None
            if current is None:
                return
            await self._write(current, result.status, result.output)
            due += interval
            await asyncio.sleep(max(0.0, due - loop.time()))

    def _output_due(self, check: Check) -> bool:
        now = time.monotonic()
        last = self._last_write.setdefault(check.key, now)  # a new leader's output clock starts when it starts
        return now - last >= self._output_interval

    async def _write(
        self, check: Check, status: str, output: str, *, still_true: Callable[[], Awaitable[bool]] | None = None
    ) -> None:
        try:
            change = await write_result(
                self._replica,
                check,
                status,
                output,
                write_output=self._output_due,
                still_true=still_true,
            )
        except AccordError as exc:
            log.warning("could not record the result of check %s: %s", check.id, exc)
            return
        if change is not None:
            self._last_write[check.key] = time.monotonic()

    # ----- TTL expiry -----------------------------------------------------------------------------

    async def _ttl_loop(self) -> None:
        while True:
            try:
                await self.expire_ttl_checks()
            except Exception as exc:
                log.warning("TTL sweep failed: %s", exc)
            await asyncio.sleep(TTL_SWEEP_S)

    async def expire_ttl_checks(self) -> None:
        expired = set(await self._timers.expired(TTL_PREFIX))
        for entry in self._replica.entries(CHECK_PREFIX):
            check = parse_check(entry)
            if check is None or not check.agent or check.type != "ttl":
                continue
            name = TTL_PREFIX + check.id
            if name not in expired:
                continue
            if check.doc.get("Status") == CRITICAL and check.doc.get("Output") == TTL_EXPIRED:
                continue

            async def still_expired(timer: str = name) -> bool:
                return timer in await self._timers.expired(timer)

            if not await still_expired():
                continue  # passed meanwhile
            await self._write(check, CRITICAL, TTL_EXPIRED, still_true=still_expired)

    # ----- deregister-after -----------------------------------------------------------------------

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(self._reap_interval)
            try:
                await self.reap()
            except Exception as exc:
                log.warning("deregister-after sweep failed: %s", exc)

    async def reap(self) -> list[str]:
        """Remove services whose agent check stayed critical past its DeregisterCriticalServiceAfter."""
        now = datetime.now(UTC)
        checks = [c for e in self._replica.entries(CHECK_PREFIX) if (c := parse_check(e)) is not None]
        doomed: set[str] = set()
        for check in checks:
            after = check.seconds("DeregisterCriticalServiceAfter")
            service_id = str(check.doc.get("ServiceID") or "")
            since = _parse_time(check.doc.get("CriticalSince"))
            if not (check.agent and after and service_id and since) or check.doc.get("Status") != CRITICAL:
                continue
            if (now - since).total_seconds() > after:
                doomed.add(service_id)
        for service_id in sorted(doomed):
            log.warning("deregistering service %s: a check stayed critical past its deregister-after", service_id)
            for check in checks:
                if str(check.doc.get("ServiceID") or "") == service_id:
                    await self._delete(check.key, check.version)
            for entry in self._replica.entries(SERVICE_PREFIX):
                with contextlib.suppress(ValueError):
                    doc = json.loads(entry.value)
                    if isinstance(doc, dict) and doc.get("ID") == service_id:
                        await self._delete(entry.key, entry.version)
        return sorted(doomed)

    async def _delete(self, key: str, version: int) -> None:
        try:
            await self._replica.delete_key(key, expect_version=version, ctx=WRITER)
        except (NotFoundError, ConflictError) as exc:
            log.info("not deleting %s: %s", key, exc)  # changed or gone meanwhile; the next sweep sees it anew


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
