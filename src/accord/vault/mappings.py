"""Get-or-create and look-up of mappings: through Redis when it answers, on the database alone otherwise.

Both paths end in the same place: a live row in the database, unique per (scope, type,
fingerprint), written before any caller sees its token. Redis serialises allocation (one
GET_OR_CREATE script per batch) and caches rows; the database's unique constraints settle the rare
races Redis cannot see (a restart in the middle of an allocation, an instance on the database path).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeAlias, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from accord.core.crypto import Cipher
from accord.store.engine import read_tx, write_tx
from accord.vault import sql
from accord.vault import tables as t
from accord.vault._redis import REDIS_FAILURES, RedisGate
from accord.vault.cache import PENDING, HotOriginals, Lacking, RedisMappings
from accord.vault.sequences import Sequences, lock_sequences, reserve_range, sequence_name
from accord.vault.sql import Found, Item, NewRow
from accord.vault.tokens import format_token, split_token
from accord.vault.types import VaultError

__all__ = ["Mappings", "Resolution"]

log = logging.getLogger("accord.vault")
T = TypeVar("T")
_MAX_ATTEMPTS = 20
_BATCHES_IN_FLIGHT = 4  # while some batches wait on the database or Redis, others can go on


def original_aad(scope: str, token: str) -> bytes:
    """Binds an encrypted original to its row: copied to another scope or token, it no longer opens."""
    return f"accord-vault\0{scope}\0{token}".encode()


@dataclass
class Resolution:
    """What a set of tokens resolved to; ``missing`` includes the ``expired`` ones. The repr hides originals."""

    originals: dict[str, str] = field(default_factory=dict, repr=False)
    missing: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)


class Mappings:
    def __init__(
        self, engine: AsyncEngine, gate: RedisGate, sequences: Sequences, cipher: Cipher, *, hot_tokens: int = 0
    ) -> None:
        self._engine = engine
        self._gate = gate
        self._sequences = sequences
        self._cipher = cipher
        self._redis = RedisMappings(gate.client) if gate.client is not None else None
        self.touch_every = timedelta(seconds=60)
        self.hot = HotOriginals(hot_tokens)
        self._coalescer = _Coalescer(self._tokens_now)

    @property
    def redis(self) -> RedisMappings | None:
        return self._redis

    def fingerprint(self, data: bytes) -> bytes:
        return self._cipher.fingerprint(data)

    async def aclose(self) -> None:
        await self._coalescer.aclose()

    # ----- mask: field -> token ------------------------------------------------------------------

    async def tokens_for(self, scope: str, items: Sequence[Item], ttl: int) -> dict[bytes, str]:
        """Every item's token, persisted; concurrent calls of this process are served together."""
        return await self._coalescer.submit(scope, items, ttl)

    async def _tokens_now(self, scope: str, items: Sequence[Item], ttl: int) -> dict[bytes, str]:
        if self._redis is not None and self._gate.usable() is not None:
            try:
                tokens = await self._via_redis(self._redis, scope, items, ttl)
            except REDIS_FAILURES as exc:
                self._gate.failed(exc)
            else:
                self._gate.succeeded()
                return tokens
        return await _retry_deadlocks(lambda: self._via_db(scope, items, ttl))

    async def _via_redis(self, redis: RedisMappings, scope: str, items: Sequence[Item], ttl: int) -> dict[bytes, str]:
        """One script call finds or allocates every token; new ones are persisted, then published.

        The database is not asked first about originals Redis does not know (after a Redis restart it
        knows none): a new token is allocated for them, its insert collides with the live row on
        (scope, type, fingerprint), and the caller adopts that row's token. The number is skipped.
        """
        tokens, pending, _ = _sort(items, await self._allocate(redis, scope, items, ttl))
        publish: list[tuple[bytes, str, bytes]] = []
        if pending:
            persisted, leftovers = await _retry_deadlocks(lambda: self._persist(scope, pending, ttl))
            self._adopt(persisted, tokens, publish)
            if leftovers:
                tokens.update(await _retry_deadlocks(lambda: self._via_db(scope, leftovers, ttl)))
        if publish:
            await redis.publish(scope, publish)
        return tokens

    async def _allocate(self, redis: RedisMappings, scope: str, items: Sequence[Item], ttl: int) -> list[str]:
        for _ in range(_MAX_ATTEMPTS):
            reply = await redis.get_or_create(scope, items, ttl, allocate=True)
            if not isinstance(reply, Lacking):
                return reply
            for token_type, needed in sorted(reply.needed.items()):
                await self._sequences.refill(sequence_name(token_type), needed)
        raise VaultError(f"could not allocate tokens for {len(items)} values after {_MAX_ATTEMPTS} attempts")

    async def _persist(
        self, scope: str, pending: Sequence[tuple[Item, str]], ttl: int
    ) -> tuple[dict[bytes, Found], list[Item]]:
        """Make sure the database holds each pending token, or adopt the live row it lost to."""
        rows = sorted((self._row(scope, item, token) for item, token in pending), key=lambda row: row.item.field)
        if self._engine.dialect.name == "postgresql":
            # One statement is atomic on its own: no BEGIN and COMMIT round trips around it. A collision
            # is settled afterwards, from rows that are committed by then (the insert waited for them).
            async with sql.autocommit(self._engine) as conn:
                inserted = await sql.insert_new(conn, scope, sql.now_utc(), rows)
            if inserted == len(rows):
                found = {row.item.field: Found(row.token, row.blob) for row in rows}
            else:
                found = await self._live(scope, [row.item for row in rows], ttl)
        else:
            async with write_tx(self._engine) as conn:
                found = await self._insert(conn, scope, rows, ttl)
        return found, [item for item, _ in pending if item.field not in found]

    async def _insert(self, conn: AsyncConnection, scope: str, rows: Sequence[NewRow], ttl: int) -> dict[bytes, Found]:
        """Insert in one fixed order (so PostgreSQL writers never wait in a cycle).

        If any row collided (another caller persisted the same pending token, or the original already
        has a live row Redis did not know), every item takes the live row the database now holds.
        """
        ordered = sorted(rows, key=lambda row: row.item.field)
        if await sql.insert_new(conn, scope, sql.now_utc(), ordered) == len(ordered):
            return {row.item.field: Found(row.token, row.blob) for row in ordered}
        return await self._live(scope, [row.item for row in ordered], ttl, conn=conn)

    async def _via_db(self, scope: str, items: Sequence[Item], ttl: int) -> dict[bytes, str]:
        found = await self._live(scope, items, ttl)
        missing = [item for item in items if item.field not in found]
        if missing:
            async with write_tx(self._engine) as conn:
                found.update(await self._create(conn, scope, missing, ttl))
        return {item.field: found[item.field].token for item in items}

    async def _create(self, conn: AsyncConnection, scope: str, items: Sequence[Item], ttl: int) -> dict[bytes, Found]:
        """Inside one transaction: lock the sequences, re-check, number what is still missing, insert."""
        await lock_sequences(conn, (sequence_name(item.token_type) for item in items))
        found = await self._live(scope, items, ttl, conn=conn)
        still = sorted((item for item in items if item.field not in found), key=lambda item: item.token_type)
        rows: list[NewRow] = []
        for token_type, group in itertools.groupby(still, key=lambda item: item.token_type):
            members = list(group)
            numbers = await reserve_range(conn, sequence_name(token_type), len(members))
            rows += [
                self._row(scope, item, format_token(token_type, n)) for item, n in zip(members, numbers, strict=True)
            ]
        found.update(await self._insert(conn, scope, rows, ttl))
        if any(item.field not in found for item in items):
            raise VaultError("a mapping was created and expired concurrently; retry the call")
        return found

    async def _live(
        self, scope: str, items: Sequence[Item], ttl: int, *, conn: AsyncConnection | None = None
    ) -> dict[bytes, Found]:
        """Live rows of ``items``. Rows whose last use looks old are touched and confirmed in one statement,
        so a sweep cannot expire a mapping that is being handed out; fresh rows need no write."""
        now = sql.now_utc()
        if conn is None:
            async with read_tx(self._engine) as reader:
                found = await sql.fetch_live(reader, scope, items)
        else:
            found = await sql.fetch_live(conn, scope, items)
        stale = {key: row.token for key, row in found.items() if self._stale(row, now, ttl)}
        if stale:
            if conn is None:
                async with write_tx(self._engine) as writer:
                    confirmed = await sql.touch_tokens(writer, scope, stale.values(), now)
            else:
                confirmed = await sql.touch_tokens(conn, scope, stale.values(), now)
            for key, token in stale.items():
                if token not in confirmed:
                    del found[key]
        return found

    # ----- unmask: token -> original -------------------------------------------------------------

    async def originals_for(self, scope: str, tokens: Sequence[str], ttl: int) -> Resolution:
        result = Resolution()
        now = time.monotonic()
        for token in tokens:
            original = self.hot.get(scope, token, now)
            if original is not None:
                result.originals[token] = original
        if len(result.originals) == len(tokens):
            return result
        for token in await self._resolve(scope, [tok for tok in tokens if tok not in result.originals], ttl, result):
            self.hot.put(scope, token, result.originals[token], now)
        return result

    async def _resolve(self, scope: str, tokens: Sequence[str], ttl: int, result: Resolution) -> list[str]:
        """Fills ``result``; returns the tokens confirmed live just now (which may be held in memory)."""
        missing = list(tokens)
        recache = False
        if self._redis is not None and self._gate.usable() is not None:
            try:
                blobs = await self._redis.resolve(scope, tokens)
            except REDIS_FAILURES as exc:
                self._gate.failed(exc)
            else:
                self._gate.succeeded()
                recache = True
                missing = [token for token, blob in zip(tokens, blobs, strict=True) if blob is None]
                for token, blob in zip(tokens, blobs, strict=True):
                    if blob is not None:
                        result.originals[token] = self._open(scope, token, blob)
        confirmed = [token for token in tokens if token in result.originals]
        if missing:
            confirmed += await self._resolve_db(scope, missing, ttl, result, recache=recache)
        return confirmed

    async def _resolve_db(
        self, scope: str, tokens: Sequence[str], ttl: int, result: Resolution, *, recache: bool
    ) -> list[str]:
        """Tokens Redis did not know: read them from the database, count misses, re-cache the live ones."""
        now = sql.now_utc()
        async with read_tx(self._engine) as conn:
            rows = await sql.lookup_tokens(conn, scope, tokens)
        live = {token: row for token, row in rows.items() if not row.expired and row.blob is not None}
        result.expired = sorted(token for token, row in rows.items() if row.expired)
        result.missing = [token for token in tokens if token not in live]
        for token, row in live.items():
            result.originals[token] = self._open(scope, token, row.blob or b"")
        stale = [token for token, row in live.items() if self._stale(Found(token, b"", row.last_used_at), now, ttl)]
        counts = {t.UNMASK_MISSES: len(result.missing), t.UNMASK_EXPIRED: len(result.expired)}
        confirmed: set[str] = set()
        if stale or any(counts.values()):
            async with write_tx(self._engine) as conn:
                confirmed = await sql.touch_tokens(conn, scope, stale, now) if stale else set()
                await sql.add_counts(conn, counts)
        cacheable = [token for token in live if token in confirmed or token not in stale]
        if recache and cacheable and self._redis is not None:
            entries = [
                (_field(live[tok].token_type, live[tok].fingerprint), tok, live[tok].blob or b"") for tok in cacheable
            ]
            try:
                await self._redis.publish(scope, entries)
            except REDIS_FAILURES as exc:
                self._gate.failed(exc)
        return cacheable

    # ----- helpers -------------------------------------------------------------------------------

    def _stale(self, found: Found, now: datetime, ttl: int) -> bool:
        return ttl > 0 and (found.last_used_at is None or found.last_used_at < now - self.touch_every)

    def _adopt(
        self, found: dict[bytes, Found], tokens: dict[bytes, str], publish: list[tuple[bytes, str, bytes]]
    ) -> None:
        for key, mapping in found.items():
            tokens[key] = mapping.token
            publish.append((key, mapping.token, mapping.blob))

    def _row(self, scope: str, item: Item, token: str) -> NewRow:
        blob = self._cipher.encrypt(item.original.encode(), aad=original_aad(scope, token))
        return NewRow(item, token, split_token(token)[1], blob)

    def _open(self, scope: str, token: str, blob: bytes) -> str:
        return self._cipher.decrypt(blob, aad=original_aad(scope, token)).decode()


_Request: TypeAlias = tuple[str, Sequence[Item], int, "asyncio.Future[dict[bytes, str]]"]


class _Coalescer:
    """Concurrent get-or-create calls of one process share script calls and transactions.

    Up to ``_BATCHES_IN_FLIGHT`` batches run at once; a call that arrives while all of them are busy
    waits for the next batch, which takes every call queued by then: one GET_OR_CREATE, one insert
    and one publish per scope, not one of each per call. A call that arrives when a batch slot is
    free is served at once.
    """

    def __init__(self, run: Callable[[str, Sequence[Item], int], Awaitable[dict[bytes, str]]]) -> None:
        self._run = run
        self._queue: list[_Request] = []
        self._drains: set[asyncio.Task[None]] = set()

    async def submit(self, scope: str, items: Sequence[Item], ttl: int) -> dict[bytes, str]:
        future: asyncio.Future[dict[bytes, str]] = asyncio.get_running_loop().create_future()
        self._queue.append((scope, items, ttl, future))
        if len(self._drains) < _BATCHES_IN_FLIGHT:
            drain = asyncio.create_task(self._drain_queue(), name="accord-vault-batch")
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        return await future

    async def _drain_queue(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            groups: dict[tuple[str, int], list[_Request]] = collections.defaultdict(list)
            for request in batch:
                groups[(request[0], request[2])].append(request)
            for (scope, ttl), requests in groups.items():
                await self._serve(scope, ttl, requests)

    async def _serve(self, scope: str, ttl: int, requests: list[_Request]) -> None:
        merged = {item.field: item for _, items, _, _ in requests for item in items}
        try:
            tokens = await self._run(scope, list(merged.values()), ttl)
        except Exception as exc:  # every waiter of the batch learns why; the next batch still runs
            _fail(requests, exc)
            return
        except BaseException:
            _fail(requests, VaultError("the vault was closed"))
            raise
        for _, items, _, future in requests:
            if not future.done():
                future.set_result({item.field: tokens[item.field] for item in items})

    async def aclose(self) -> None:
        for drain in list(self._drains):
            drain.cancel()
            with contextlib.suppress(BaseException):
                await drain
        _fail(self._queue, VaultError("the vault was closed"))
        self._queue = []


def _fail(requests: Sequence[_Request], exc: BaseException) -> None:
    for *_, future in requests:
        if not future.done():
            future.set_exception(exc)


def _sort(items: Sequence[Item], states: Sequence[str]) -> tuple[dict[bytes, str], list[tuple[Item, str]], list[Item]]:
    """Split a GET_OR_CREATE reply into live tokens, pending tokens (to persist) and unknown items."""
    tokens: dict[bytes, str] = {}
    pending: list[tuple[Item, str]] = []
    unknown: list[Item] = []
    for item, state in zip(items, states, strict=True):
        if not state:
            unknown.append(item)
        elif state.startswith(PENDING):
            pending.append((item, state[len(PENDING) :]))
        else:
            tokens[item.field] = state
    return tokens, pending, unknown


def _field(token_type: str, fingerprint: bytes | None) -> bytes:
    return token_type.encode() + b":" + (fingerprint or b"")


async def _retry_deadlocks(operation: Callable[[], Awaitable[T]]) -> T:
    """Get-or-create is idempotent, so a transaction PostgreSQL chose as a deadlock victim is simply rerun."""
    for attempt in range(_MAX_ATTEMPTS):
        try:
            return await operation()
        except sa.exc.DBAPIError as exc:
            if "deadlock detected" not in str(exc.orig).lower() or attempt == _MAX_ATTEMPTS - 1:
                raise
            log.debug("deadlock on vault write, retrying: %s", exc.orig)
    raise AssertionError("unreachable")
