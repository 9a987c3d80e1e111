"""Consul sessions: entries ``registry/session/<id>``, expired by every replica, invalidated with CAS.

A session with a TTL expires ``2 x TTL`` after its last renewal (Consul's ``SessionTTLMultiplier``;
Patroni and kvtools rely on the doubling). Renewal writes ``RenewedAt`` into the entry, so every
replica sees it. Every server replica runs the same 1 s reaper: it deletes an expired session's
entry on the version it read, so when two replicas race only one delete commits and the other
gets a ``ConflictError`` — no leader is needed.

Invalidation (destroy, expiry) deletes the session entry first, then releases (``release``) or
deletes (``delete``) the keys it held. Lock-delay is kept in memory on every replica: when the
delete of a session arrives, each replica arms the delay for the keys that session held, from the
delete's commit time, so ``acquire`` of those keys answers ``false`` on any replica until it
passes. If the invalidating replica dies between the two steps, the reaper releases keys held by
sessions that no longer exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from accord.core.errors import ConflictError, NotFoundError, ValidationFailedError
from accord.registry.kv import KvItem, KvService
from accord.registry.kvkeys import KV_PREFIX, KvMeta, encode_segment
from accord.registry.session_model import (
    CHECK_PREFIX,
    SERF_HEALTH,
    SESSION_PREFIX,
    CheckStatus,
    Session,
    parse_create,
    session_key,
)
from accord.replica.replica import Replica
from accord.store.types import Change, Entry, PutItem, WriteContext

__all__ = ["SESSION_PREFIX", "CheckStatus", "Session", "SessionService", "parse_create", "session_key"]

log = logging.getLogger("accord.registry.sessions")
REAP_INTERVAL_S = 1.0


class SessionService:
    """Sessions of one server replica, and the reaper every replica runs."""

    def __init__(self, replica: Replica, kv: KvService, *, reap_interval: float = REAP_INTERVAL_S) -> None:
        self.replica = replica
        self.kv = kv
        self._reap_interval = reap_interval
        self._sessions: dict[str, Session] = {}  # store key -> parsed session (to know its lock delay when it goes)
        self._holders: dict[str, str] = {}  # kv store key -> session holding it
        self._deleted = 0  # revision of the newest session delete
        self._reaper: asyncio.Task[None] | None = None
        self._unsubscribe = [
            replica.on_entry(self._on_entry),
            replica.on_change(self._on_change),
            replica.on_reload(self._on_reload),
        ]
        for entry in replica.entries(SESSION_PREFIX):
            self._on_entry(entry.key, entry)
        for entry in replica.entries(KV_PREFIX):
            self._on_entry(entry.key, entry)

    async def start(self) -> None:
        deletes = await self.replica.store.latest_deletes(SESSION_PREFIX)
        self._deleted = max(self._deleted, max(deletes.values(), default=0))
        self._reaper = asyncio.create_task(self._reap_forever(), name="accord-session-reaper")

    async def aclose(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper

    # ----- reads --------------------------------------------------------------------------------

    def index(self) -> int:
        newest = max((e.mod_revision for e in self.replica.entries(SESSION_PREFIX)), default=0)
        return max(newest, self._deleted, 1)

    def get(self, session_id: str) -> Session | None:
        entry = self.replica.entry(session_key(session_id))
        return Session.from_entry(entry) if entry else None

    def check_status(self, check_id: str) -> str | None:
        """The Status of check ``check_id`` (``registry/check/<id>``, written by the catalog); None if missing."""
        if check_id == SERF_HEALTH:
            return "passing"  # synthesised for the one node, never stored
        entry = self.replica.entry(CHECK_PREFIX + encode_segment(check_id))
        if entry is None:
            return None
        try:
            status = json.loads(entry.value).get("Status")
        except (ValueError, AttributeError):
            return "critical"
        return str(status or "critical")

    def broken(self, session: Session) -> bool:
        """Whether a check the session is bound to is critical or gone (Consul invalidates it then)."""
        linked = [*session.node_checks, *(c["ID"] for c in session.service_checks or [])]
        return any(self.check_status(check) in (None, "critical") for check in linked)

    def exists(self, session_id: str) -> bool:
        return self.replica.entry(session_key(session_id)) is not None

    def all(self) -> list[Session]:
        return sorted(
            (Session.from_entry(e) for e in self.replica.entries(SESSION_PREFIX)),
            key=lambda s: s.entry.create_revision if s.entry else 0,
        )

    # ----- writes -------------------------------------------------------------------------------

    async def create(self, session: Session, *, ctx: WriteContext | None = None) -> Session:
        key = session_key(session.id)
        await self.replica.put_keys([PutItem(key, session.stored(), 0)], ctx=ctx)
        created = self.get(session.id)
        return created or session

    async def renew(self, session_id: str, *, ctx: WriteContext | None = None) -> Session | None:
        """The renewed session, or None when it does not exist (anymore)."""
        for _attempt in range(5):
            current = self.get(session_id)
            if current is None or current.entry is None:
                return None
            renewed = Session(
                current.id,
                current.name,
                current.node,
                current.lock_delay,
                current.behavior,
                current.ttl,
                current.node_checks,
                current.service_checks,
                datetime.now(UTC),
            )
            item = PutItem(current.entry.key, renewed.stored(), current.entry.version)
            try:
                await self.replica.put_keys([item], ctx=ctx)
            except ConflictError:
                await self.replica.resync()
                continue
            return self.get(session_id)
        return self.get(session_id)

    async def destroy(self, session_id: str, *, ctx: WriteContext | None = None) -> None:
        current = self.get(session_id)
        if current is not None:
            await self.invalidate(current, ctx=ctx)

    async def invalidate(self, session: Session, *, ctx: WriteContext | None = None) -> bool:
        """Delete the session on the version read, then release or delete its keys; False if another did it."""
        if session.entry is None:
            return False
        held = self._held(lambda holder: holder == session.id)
        try:
            await self.replica.delete_key(session.entry.key, expect_version=session.entry.version, ctx=ctx)
        except (ConflictError, NotFoundError):
            return False
        await self._free(held, session.behavior, ctx=ctx)
        return True

    def _held(self, which: Callable[[str], bool]) -> list[KvItem]:
        """The KV entries held by sessions ``which`` selects (from the holder map, without opening every value)."""
        keys = [key for key, holder in self._holders.items() if which(holder)]
        found = (self.kv.item_at(key) for key in keys)
        return [item for item in found if item is not None and item.meta.session and which(item.meta.session)]

    async def _free(self, held: list[KvItem], behavior: str, *, ctx: WriteContext | None) -> None:
        for item in held:
            try:
                if behavior == "delete":
                    await self.replica.delete_key(item.store_key, expect_version=item.entry.version, ctx=ctx)
                else:
                    meta = KvMeta(item.meta.flags, item.meta.lock_index, "")
                    await self.replica.put_keys([self.kv.put_item(item.store_key, meta, item.raw, item)], ctx=ctx)
            except (ConflictError, NotFoundError):
                continue  # someone changed the key meanwhile; whoever holds it now is not this session

    # ----- the reaper ---------------------------------------------------------------------------

    async def reap_once(self) -> None:
        now = time.time()
        ctx = WriteContext("session-reaper", "session-expire")
        for session in self.all():
            expires = session.expires_at()
            expired = expires is not None and expires < now
            if (expired or self.broken(session)) and await self.invalidate(session, ctx=ctx):
                why = f"TTL {session.ttl}s, renewed at {session.renewed_at}" if expired else "a linked check failed"
                log.info("session %s invalidated (%s)", session.id, why)
        orphans = self._held(lambda holder: not self.exists(holder))
        if orphans:
            await self._free(orphans, "release", ctx=ctx)

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self._reap_interval)
            if self.replica.read_only:
                continue
            try:
                await self.reap_once()
            except Exception as exc:  # the next round retries; a database hiccup must not stop expiry
                log.warning("session reaper: %s", exc)

    # ----- replica listeners --------------------------------------------------------------------

    def _on_entry(self, key: str, entry: Entry | None) -> None:
        if key.startswith(SESSION_PREFIX):
            if entry is not None:
                self._sessions[key] = Session.from_entry(entry)
        elif key.startswith(KV_PREFIX):
            holder = ""
            if entry is not None:
                with contextlib.suppress(ValidationFailedError):
                    holder = self.kv.meta_of(entry).session
            if holder:
                self._holders[key] = holder
            else:
                self._holders.pop(key, None)

    def _on_reload(self, revision: int, fire: bool) -> None:
        """After a full reload, forget what no longer exists; deletes in the gap are under the reload's revision."""
        if not fire:
            return
        self._deleted = max(self._deleted, revision)
        self._sessions = {key: s for key, s in self._sessions.items() if self.replica.entry(key) is not None}
        self._holders = {key: h for key, h in self._holders.items() if self.replica.entry(key) is not None}

    def _on_change(self, change: Change) -> None:
        if not change.key.startswith(SESSION_PREFIX) or change.op != "delete":
            return
        self._deleted = max(self._deleted, change.revision)
        gone = self._sessions.pop(change.key, None)
        if gone is None or gone.lock_delay <= 0:
            return
        at = change.at.timestamp() if change.at else time.time()
        for kv_key, holder in self._holders.items():
            if holder == gone.id:
                self.kv.arm_lock_delay(kv_key, at + gone.lock_delay)
