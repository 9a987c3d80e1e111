"""The leader lease: the one replica that runs health checks, TTL expiry and deregister-after reaping.

The lease is the timer ``leader`` (``store/timers.py``, database time): each replica tries
``acquire("leader", <its id>, 10 s)`` every 3 s, which renews it for its holder and gives it to
another replica only once it has expired — so when the holder dies (SIGKILL), another replica takes
over within one lease TTL plus one renewal period. A replica that fails to renew (the database is
unreachable, or someone else holds the lease) stops its leader work at once.

Every replica also arms the timer ``peer/<address>`` on each round: ``/v1/status/peers`` lists the
addresses whose timer is alive. When the holder changes, the new holder writes the revisioned entry
``registry/lease/leader`` ({"holder", "address", "since"}) so every replica can name the leader's
address from its own replica; renewals write nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from datetime import UTC, datetime
from typing import Protocol

from accord.core.errors import AccordError, ConflictError
from accord.replica.replica import Replica
from accord.store.types import PutItem, Timers, WriteContext

__all__ = [
    "LEADER_TIMER",
    "LEASE_KEY",
    "PEER_PREFIX",
    "LeaderLease",
    "LeaderWork",
    "leader_address",
    "recorded_leader",
    "replica_id",
]

log = logging.getLogger("accord.registry.leader")
LEASE_KEY = "registry/lease/leader"
LEADER_TIMER = "leader"
PEER_PREFIX = "peer/"
LEASE_TTL_S = 10.0
RENEW_EVERY_S = 3.0


class LeaderWork(Protocol):
    """What runs while this replica leads: started on gaining the lease, stopped on losing it."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def replica_id() -> str:
    """A name for this process that no other replica (here or on another host) shares."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaderLease:
    def __init__(
        self,
        replica: Replica,
        timers: Timers,
        work: LeaderWork,
        *,
        address: str,
        holder: str | None = None,
        ttl_s: float = LEASE_TTL_S,
        renew_s: float = RENEW_EVERY_S,
    ) -> None:
        self._replica = replica
        self._timers = timers
        self._work = work
        self.address = address
        self.holder = holder or replica_id()
        self._ttl = ttl_s
        self._renew = renew_s
        self.leading = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="accord-leader-lease")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._step_down()
        with contextlib.suppress(Exception):
            await self._timers.release(LEADER_TIMER, self.holder)  # hand over at once, not after one TTL
        with contextlib.suppress(Exception):
            await self._timers.disarm(PEER_PREFIX + self.address)

    async def round(self) -> None:
        """One renewal: heartbeat, try the lease, start or stop the leader work accordingly."""
        try:
            await self._timers.arm(PEER_PREFIX + self.address, self._ttl)
            held = await self._timers.acquire(LEADER_TIMER, self.holder, self._ttl)
        except Exception as exc:  # the database is unreachable: we cannot know we still lead
            log.warning("leader lease not renewed: %s", exc)
            held = False
        if held and not self.leading:
            log.info("this replica (%s, %s) is the leader now", self.holder, self.address)
            self.leading = True
            await self._work.start()
        elif not held and self.leading:
            log.warning("this replica (%s) lost the leader lease; stopping leader work", self.holder)
            await self._step_down()
        if held:
            await self._announce()

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:  # never let the lease loop die
                log.exception("leader lease round failed")
            await asyncio.sleep(self._renew)

    async def _step_down(self) -> None:
        if self.leading:
            self.leading = False
            try:
                await self._work.stop()
            except Exception:
                log.exception("stopping the leader work failed")

    async def _announce(self) -> None:
        """Write the lease entry when it names another holder; renewals leave it (and its revision) alone."""
        entry = self._replica.entry(LEASE_KEY)
        if entry is not None:
            with contextlib.suppress(ValueError):
                doc = json.loads(entry.value)
                if isinstance(doc, dict) and doc.get("holder") == self.holder and doc.get("address") == self.address:
                    return
        body = {"holder": self.holder, "address": self.address, "since": datetime.now(UTC).isoformat()}
        item = PutItem(LEASE_KEY, json.dumps(body).encode(), expect_version=entry.version if entry else 0)
        try:
            await self._replica.put_keys([item], ctx=WriteContext("accord leader", "lease"))
        except ConflictError:
            pass  # our replica was behind; the next round sees the current entry and tries again
        except AccordError as exc:
            log.warning("could not record the leader lease: %s", exc)


def leader_address(replica: Replica, holder: str | None) -> str:
    """The address of ``holder`` (the lease's live holder) from the lease entry; "" if none or not yet recorded."""
    doc = _lease_doc(replica)
    if holder is None or doc.get("holder") != holder:
        return ""
    return str(doc.get("address") or "")


def recorded_leader(replica: Replica) -> str:
    """The address of the last leader recorded in the lease entry, alive or not ("" if none ever was)."""
    return str(_lease_doc(replica).get("address") or "")


def _lease_doc(replica: Replica) -> dict[str, object]:
    entry = replica.entry(LEASE_KEY)
    if entry is None:
        return {}
    try:
        doc = json.loads(entry.value)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}
