"""A process's in-memory copy of the keys under some prefixes, kept current by the bus.

Changes are applied strictly in revision order. A gap, a reconnect, or the periodic revision
check makes the replica replay history from its last revision, so a dropped bus message costs at
most one check interval of staleness. Writes go to the store first, then into the replica, then
out to every other process.

A replica knows keys and entries only; what they mean belongs to whoever holds one (LiveConfig,
the token index), through listeners.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from accord.bus.factory import Propagation, build_propagation
from accord.bus.local_bus import DEFAULT_POLL_INTERVAL_S
from accord.bus.redis_url import resolve_redis_url
from accord.bus.types import BusEvent
from accord.core.errors import CompactedError, ReadOnlyError, StoreUnavailableError
from accord.replica import snapshot_file
from accord.replica._confirm import AUTHORITY_PREFIXES, as_stored
from accord.replica._entries import entry_from, subscribe
from accord.replica.boot import InitialSnapshot, initial_snapshot
from accord.replica.status import ReplicaStatus
from accord.store.engine import create_engine, resolve_db_url
from accord.store.kv import SqlKVStore
from accord.store.types import BatchItem, Change, Entry, KVStore, PutItem, WriteContext

log = logging.getLogger("accord.replica")
DEFAULT_CHECK_INTERVAL_S = 5.0
CLOSE_WAIT_S = 10.0  # longer than one Redis command (socket timeout 2 s) plus a store round trip
DEFAULT_START_TIMEOUT_S = 30.0
# How long an own write past a gap waits for the bus to bring the revisions before it (another process's
# writes, committed just before and announced right after) before the history is read instead.
HOLD_S = 0.01
_MESSAGE_BUSES = ("redis", "postgres", "remote")  # buses that carry every change; the local bus only polls
EntryListener = Callable[[str, Entry | None], None]
ChangeListener = Callable[[Change], None]
ReloadListener = Callable[[int, bool], None]
RecoverHook = Callable[[], Awaitable[None]]


class Replica:
    """Entries under ``prefixes`` with the revision they reflect; reads are memory reads."""

    def __init__(
        self,
        store: KVStore,
        propagation: Propagation,
        *,
        actor: str,
        prefixes: Sequence[str],
        check_interval: float = DEFAULT_CHECK_INTERVAL_S,
        snapshot_file: str | None = None,
    ) -> None:
        self._store = store
        self._propagation = propagation
        self._actor = actor
        self._prefixes = tuple(prefixes)
        self._check_interval = check_interval
        self._snapshot_file = snapshot_file
        self._snapshot_written = -1
        self._checked_revision = 0
        self._entries: dict[str, Entry] = {}
        self._entry_listeners: list[EntryListener] = []
        self._change_listeners: list[ChangeListener] = []
        self._bus_listeners: list[ChangeListener] = []
        self._reload_listeners: list[ReloadListener] = []
        self._recover_hooks: list[RecoverHook] = []
        self._lock = asyncio.Lock()
        # own writes held until the bus brings the revisions before them, each with its waiting writer
        self._held: dict[int, tuple[Change, asyncio.Future[None]]] = {}
        # changes heard from the bus past a gap, waiting (at most HOLD_S) for the revisions before them
        self._early: dict[int, Change] = {}
        self._gap_filler: asyncio.Task[None] | None = None
        self.gap_reads = 0  # held changes (own or heard) whose gap nothing filled within HOLD_S: the history was read
        self._checker: asyncio.Task[None] | None = None
        self._closing = False
        self.last_revision = 0
        self.read_only = False
        self.db_degraded = False

    @classmethod
    async def from_url(
        cls,
        db_url: str | None = None,
        redis_url: str | None = None,
        *,
        prefixes: Sequence[str],
        actor: str,
        watch: bool = True,
        start_timeout: float = DEFAULT_START_TIMEOUT_S,
        check_interval: float = DEFAULT_CHECK_INTERVAL_S,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        snapshot_file: str | None = None,
    ) -> Replica:
        """A started replica of ``prefixes`` (URLs default as for ``accord.connect``; "" means no Redis)."""
        replica = cls.unstarted(
            resolve_db_url(db_url),
            resolve_redis_url(redis_url),
            prefixes=prefixes,
            actor=actor,
            check_interval=check_interval,
            poll_interval=poll_interval,
            snapshot_file=snapshot_file,
        )
        try:
            first = await replica.first_snapshot(budget_s=start_timeout)
            await replica.start(snapshot=first.snapshot, watch=watch, read_only=first.read_only)
        except BaseException:
            await replica.aclose()
            raise
        return replica

    @classmethod
    def unstarted(
        cls,
        db_url: str,
        redis_url: str | None,
        *,
        prefixes: Sequence[str],
        actor: str,
        check_interval: float = DEFAULT_CHECK_INTERVAL_S,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        snapshot_file: str | None = None,
    ) -> Replica:
        """A replica on its own store and bus, not yet loaded: for a holder that subscribes before ``start``."""
        store = SqlKVStore(create_engine(db_url))
        return cls(
            store,
            build_propagation(store, redis_url, poll_interval=poll_interval),
            actor=actor,
            prefixes=prefixes,
            check_interval=check_interval,
            snapshot_file=snapshot_file,
        )

    async def first_snapshot(
        self, *, budget_s: float, prepare: Callable[[], Awaitable[None]] | None = None
    ) -> InitialSnapshot:
        """What ``start`` loads: the database's snapshot, or a read-only fallback (see ``boot``)."""
        return await initial_snapshot(
            self._store,
            self._propagation,
            self._prefixes,
            budget_s=budget_s,
            snapshot_path=self._snapshot_file,
            prepare=prepare,
        )

    async def __aenter__(self) -> Replica:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    @property
    def store(self) -> KVStore:
        return self._store

    @property
    def actor(self) -> str:
        """Who this replica's writes are recorded as."""
        return self._actor

    @property
    def prefixes(self) -> tuple[str, ...]:
        return self._prefixes

    def covers(self, key: str) -> bool:
        """Whether ``key`` is under one of this replica's prefixes."""
        return key.startswith(self._prefixes)

    def entry(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def entries(self, prefix: str = "") -> list[Entry]:
        return [entry for key, entry in sorted(self._entries.items()) if key.startswith(prefix)]

    # ----- listeners (each returns a function that removes it) ----------------------------------

    def on_entry(self, listener: EntryListener) -> Callable[[], None]:
        """``listener(key, entry or None)`` for every applied change of a key here, and every key of a (re)load."""
        return subscribe(self._entry_listeners, listener)

    def on_change(self, listener: ChangeListener) -> Callable[[], None]:
        """``listener(change)`` after each applied change of a key here (after the entry listeners)."""
        return subscribe(self._change_listeners, listener)

    def on_bus_change(self, listener: ChangeListener) -> Callable[[], None]:
        """``listener(change)`` for each change another process announced, once it is applied here."""
        return subscribe(self._bus_listeners, listener)

    def on_reload(self, listener: ReloadListener) -> Callable[[], None]:
        """``listener(revision, fire)`` after a full (re)load; ``fire`` is False for the first load."""
        return subscribe(self._reload_listeners, listener)

    def before_recover(self, hook: RecoverHook) -> Callable[[], None]:
        """Await ``hook()`` when the database is back after a read-only start, before reloading."""
        return subscribe(self._recover_hooks, hook)

    def status(self) -> ReplicaStatus:
        """How current this replica is, which dependencies are degraded, and how changes travel right now."""
        bus = self._propagation.bus
        return ReplicaStatus(
            revision=self.last_revision,
            database="degraded" if self.db_degraded else "ok",
            read_only=self.read_only,
            bus=bus.mode,
            bus_degraded=bus.degraded,
            fallback_active=bus.fallback_active,
            bus_rejected=self._propagation.auth.rejected,
        )

    # ----- writes -------------------------------------------------------------------------------

    async def put_keys(self, items: Sequence[PutItem], *, ctx: WriteContext | None = None) -> list[Change]:
        """Write raw entries in one transaction, apply them here, announce them."""
        self.check_writable()
        changes = await self._store.put_many(items, ctx=self._context(ctx, "set"))
        for change in changes:
            await self._after_write(change)
        return changes

    async def write_batch(self, items: Sequence[BatchItem], *, ctx: WriteContext | None = None) -> list[Change]:
        """Puts and deletes in one transaction, applied here and announced (Consul's /v1/txn)."""
        self.check_writable()
        changes = await self._store.write_batch(items, ctx=self._context(ctx, "set"))
        for change in changes:
            await self._after_write(change)
        return changes

    async def delete_key(
        self, key: str, *, expect_version: int | None = None, ctx: WriteContext | None = None
    ) -> Change:
        self.check_writable()
        change = await self._store.delete(key, expect_version=expect_version, ctx=self._context(ctx, "delete"))
        await self._after_write(change)
        return change

    async def rollback_key(self, key: str, to_version: int, *, ctx: WriteContext | None = None) -> Change:
        self.check_writable()
        change = await self._store.rollback(key, to_version, ctx=self._context(ctx, "rollback"))
        await self._after_write(change)
        return change

    async def announce(self, changes: Sequence[Change]) -> None:
        """Tell every other process about changes committed outside this replica's writes (schema registration)."""
        for change in changes:
            await self._announce(change)

    def check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyError("the database is unreachable; this process serves a cached snapshot and refuses writes")

    def _context(self, ctx: WriteContext | None, action: str) -> WriteContext:
        if ctx is None:
            return WriteContext(self._actor, action)
        return WriteContext(ctx.actor or self._actor, ctx.action or action, ctx.request_id)

    async def _after_write(self, change: Change) -> None:
        """Apply this process's own write, then announce it.

        A write that lands past a gap usually follows another process's write whose bus message is
        a millisecond away (writers commit in revision order and announce right after): the change is
        held until the bus fills the gap, and only if it has not after HOLD_S does the replica read
        the history. Either way the caller returns with its write applied (read-your-writes). A held
        write is published before it waits: the writers after it may be holding for it, and a
        publish delayed by this hold would chain their holds behind ours. Its cache update waits
        for the apply, which knows the entry the write replaced.
        """
        applied: asyncio.Future[None] | None = None
        async with self._lock:
            if change.revision > self.last_revision + 1 and self._bus_fills_gaps():
                applied = asyncio.get_running_loop().create_future()
                self._held[change.revision] = (change, applied)
            else:
                await self._apply_change(change)
                if self._early:
                    await self._drain_early()
        if applied is None:
            await self._announce(change)
            return
        published = await self._publish(change)
        try:
            async with asyncio.timeout(HOLD_S):
                await asyncio.shield(applied)
        except TimeoutError:
            async with self._lock:
                if self.last_revision < change.revision:
                    self.gap_reads += 1
                    await self._resync_locked()
        if published:
            await self._propagation.cache.apply(change, self._entry_after(change))
        else:
            await self._announce(change)

    def _bus_fills_gaps(self) -> bool:
        bus = self._propagation.bus
        return self._checker is not None and not bus.degraded and bus.mode in _MESSAGE_BUSES

    def _settle_held(self) -> None:
        """Apply held own writes that are next in line, drop those the replica has passed; wake their writers."""
        while (next_in_line := self._held.get(self.last_revision + 1)) is not None:
            self._apply_one(next_in_line[0])
        for revision in [r for r in self._held if r <= self.last_revision]:
            _change, applied = self._held.pop(revision)
            if not applied.done():
                applied.set_result(None)

    async def _announce(self, change: Change) -> None:
        if await self._propagation.cache.apply_and_publish(change, self._entry_after(change)):
            return  # cached and published in one round trip (Redis)
        await self._publish(change)

    async def _publish(self, change: Change) -> bool:
        """Announce ``change`` on the bus alone; False (logged) if it could not be."""
        try:
            await self._propagation.bus.publish(change)
        except Exception as exc:  # the write is committed; others catch up by the revision check
            log.warning("could not announce revision %d: %s", change.revision, exc)
            return False
        return True

    def _entry_after(self, change: Change) -> Entry | None:
        """The entry a change leaves, for the value cache (None for a delete)."""
        return (self._entries.get(change.key) or entry_from(change, None)) if change.op == "put" else None

    # ----- lifecycle ----------------------------------------------------------------------------

    async def start(self, *, snapshot: tuple[int, list[Entry]], watch: bool = True, read_only: bool = False) -> None:
        """Load the snapshot, then listen; the bus's first event is a resync, so nothing in between is lost."""
        self.read_only = read_only
        self.db_degraded = read_only
        self._load(*snapshot)
        if not read_only:
            self._write_snapshot_file()
        if watch:
            await self._propagation.bus.start(self._on_event, applied=self._applied_revision)
            self._checker = asyncio.create_task(self._check_forever(), name="accord-revision-check")

    async def listen(self, wait_s: float) -> bool:
        """Start listening on the bus if ``start`` did not (``watch=False``), and wait up to ``wait_s`` for it.

        For a short-lived process asked how changes travel: only a listener that tried knows.
        """
        if self._checker is None:
            await self._propagation.bus.start(self._on_event, applied=self._applied_revision)
            self._checker = asyncio.create_task(self._check_forever(), name="accord-revision-check")
        return await self.wait_connected(wait_s)

    async def wait_connected(self, wait_s: float) -> bool:
        """Wait up to ``wait_s`` for the bus to listen (it says so in the log when it does not)."""
        return await self._propagation.bus.wait_connected(wait_s)

    async def aclose(self) -> None:
        self._closing = True
        if self._gap_filler is not None:
            self._gap_filler.cancel()
        if self._checker:
            self._checker.cancel()
            # A driver may swallow the cancellation mid-command (seen with redis-py during a concurrent
            # disconnect); the loop then ends by itself after that command, which its socket timeout bounds.
            await asyncio.wait({self._checker}, timeout=CLOSE_WAIT_S)
            if not self._checker.done():
                log.warning("revision check did not stop within %gs of close; abandoning it", CLOSE_WAIT_S)
            elif not self._checker.cancelled() and self._checker.exception() is not None:
                log.debug("revision check ended with %r", self._checker.exception())
        await self._propagation.aclose()
        await self._store.aclose()

    async def resync(self) -> None:
        """Catch up from the store now (normally the bus and the periodic check do this)."""
        async with self._lock:
            await self._resync_locked()

    async def check_once(self) -> None:
        """The periodic safety net: catch up if the revision moved, repair the value cache."""
        try:
            if self.read_only:
                await self._recover()
                return
            revision = await self._store.current_revision()
            if revision != self.last_revision:
                await self.resync()
            self._set_db_degraded(False, "")
            self._write_snapshot_file()
            await self._propagation.cache.refresh(self._store, self._checked_revision)
            self._checked_revision = self.last_revision
        except StoreUnavailableError as exc:
            self._set_db_degraded(True, exc.detail)

    # ----- applying changes ---------------------------------------------------------------------

    async def _check_forever(self) -> None:
        while not self._closing:
            await asyncio.sleep(self._check_interval)
            if not self._closing:
                await self.check_once()

    def _applied_revision(self) -> int:
        return self.last_revision

    async def _on_event(self, event: BusEvent) -> None:
        try:
            async with self._lock:
                if isinstance(event, Change):
                    before = self.last_revision
                    await self._apply_change(event)
                    if before < event.revision:
                        self._heard(event)
                    if self._early:
                        await self._drain_early()
                else:
                    await self._resync_locked()
        except StoreUnavailableError as exc:
            self._set_db_degraded(True, exc.detail)

    def apply_next(self, change: Change) -> bool:
        """Apply a bus change now, without awaiting, when nothing stands in its way; False: nothing was done.

        For a bus that reads on the event loop's callbacks (the remote stream): the change must be the next
        revision, need no confirmation from the store, find the lock free (no resync or own write in
        progress) and no heard change held past a gap. Otherwise the bus hands it to ``_on_event`` as
        usual, which orders it behind them.
        """
        if self._lock.locked() or self._early or change.revision != self.last_revision + 1:
            return False
        if self.covers(change.key) and (change.value_omitted or change.key.startswith(AUTHORITY_PREFIXES)):
            return False
        self._apply_one(change)
        if self._held:
            self._settle_held()
        self._heard(change)
        return True

    async def _apply_change(self, change: Change) -> None:
        """Apply the next revision, or hold one past a gap for the revisions before it (see ``_hold_early``)."""
        if change.revision <= self.last_revision:
            return
        if change.revision != self.last_revision + 1:
            if change.revision in self._held:
                return  # our own held write, back from the bus before the gap filled: its hold decides
            if self._bus_fills_gaps():
                self._hold_early(change)
                return
            await self._resync_locked()  # a gap: the missing revisions are in the store's history
            return
        await self._apply_next(change)

    async def _apply_next(self, change: Change) -> None:
        if self.covers(change.key) and (change.value_omitted or change.key.startswith(AUTHORITY_PREFIXES)):
            confirmed = await as_stored(self._store, change)
            if confirmed is None:
                await self._resync_locked()
                return
            change = confirmed
        self._apply_one(change)
        if self._held:
            self._settle_held()

    def _hold_early(self, change: Change) -> None:
        """Hold a change heard past a gap: the missing revisions are usually on their way.

        Most often the gap is this process's own write, committed and about to be applied (a server
        worker hears the other worker's PUT first), or another writer's message a moment behind. The
        change is applied as soon as the revisions before it are; if they have not come within HOLD_S,
        the history is read, as it was at once before.
        """
        self._early[change.revision] = change
        if self._gap_filler is None or self._gap_filler.done():
            self._gap_filler = asyncio.create_task(self._fill_gap_after(HOLD_S), name="accord-gap-fill")

    async def _drain_early(self) -> None:
        """Apply the held heard changes that are next in line (firing the bus listeners for them)."""
        while self._early:
            for passed in [r for r in self._early if r <= self.last_revision]:
                del self._early[passed]
            change = self._early.pop(self.last_revision + 1, None)
            if change is None:
                return
            await self._apply_next(change)
            self._heard(change)

    async def _fill_gap_after(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        try:
            async with self._lock:
                waiting = sorted((c for c in self._early.values() if c.revision > self.last_revision), key=_revision)
                if not waiting:
                    return
                self.gap_reads += 1
                await self._resync_locked()  # the held changes are committed, so the history holds them all
                for change in waiting:
                    self._heard(change)
        except StoreUnavailableError as exc:
            self._set_db_degraded(True, exc.detail)
        finally:
            # What the history could not bring (the database down, the replica read-only) the periodic check
            # brings later, as for any gap it could not fill: held changes are not kept waiting for it.
            self._early.clear()

    def _heard(self, change: Change) -> None:
        """Tell the bus listeners about a change the bus brought, once it is applied here."""
        if change.revision <= self.last_revision:
            for listener in self._bus_listeners:
                listener(change)

    async def _resync_locked(self) -> None:
        if self.read_only:
            return
        if await self._store.current_revision() < self.last_revision:
            # The database was restored from a backup (or this replica believed a revision nobody committed):
            # its history cannot bring us back, so start over from what it holds now.
            log.warning("revision %d is ahead of the database's: reloading everything from it", self.last_revision)
            self._load(*await self._store.snapshot(self._prefixes), fire=True)
            return
        try:
            changes = await self._store.changes_since(self.last_revision)
        except CompactedError:
            self._load(*await self._store.snapshot(self._prefixes), fire=True)
            return
        for change in changes:
            self._apply_one(change)
        if self._held:
            self._settle_held()
        if self._early:
            await self._drain_early()
        self._set_db_degraded(False, "")

    def _apply_one(self, change: Change) -> None:
        self.last_revision = max(self.last_revision, change.revision)
        if not self.covers(change.key):
            return
        entry: Entry | None = None
        if change.op == "delete":
            self._entries.pop(change.key, None)
        else:
            entry = entry_from(change, self._entries.get(change.key))
            self._entries[change.key] = entry
        for entry_listener in self._entry_listeners:
            entry_listener(change.key, entry)
        for listener in self._change_listeners:
            listener(change)

    def _load(self, revision: int, entries: list[Entry], *, fire: bool = False) -> None:
        self._entries = {e.key: e for e in entries if self.covers(e.key)}
        self.last_revision = revision
        for entry_listener in self._entry_listeners:
            for key, entry in self._entries.items():
                entry_listener(key, entry)
        for listener in self._reload_listeners:
            listener(revision, fire)
        if self._held:
            self._settle_held()

    # ----- degraded modes -----------------------------------------------------------------------

    async def _recover(self) -> None:
        """Leave read-only mode once the database answers: migrate, run the hooks, reload everything."""
        await self._store.migrate()
        for hook in self._recover_hooks:
            await hook()
        snapshot = await self._store.snapshot(self._prefixes)
        async with self._lock:
            self._load(*snapshot, fire=True)
            self.read_only = False
        self._set_db_degraded(False, "")

    def _write_snapshot_file(self) -> None:
        if not self._snapshot_file or self._snapshot_written == self.last_revision:
            return
        try:
            snapshot_file.write(self._snapshot_file, self.last_revision, list(self._entries.values()))
            self._snapshot_written = self.last_revision
        except OSError as exc:
            log.warning("could not write the snapshot file %s: %s", self._snapshot_file, exc)

    def _set_db_degraded(self, degraded: bool, detail: str) -> None:
        if degraded and not self.db_degraded:
            log.warning("database unavailable, serving from memory: %s", detail)
        elif not degraded and self.db_degraded:
            log.info("database reachable again at revision %d", self.last_revision)
        self.db_degraded = degraded


def _revision(change: Change) -> int:
    return change.revision
