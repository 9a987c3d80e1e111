"""Get-or-create and look-up of mappings: through Redis when it answers, on the database alone otherwise.

Both paths end in the same place: a live row in the database, unique per (scope, type,
fingerprint), written before any caller sees its token. Redis serialises allocation (one
GET_OR_CREATE script per batch) and caches rows; the database's unique constraints settle the rare
races Redis cannot see (a restart in the middle of an allocation, an instance on the database path).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from accord.core.crypto import Cipher
from accord.store.engine import read_tx, write_tx
from accord.vault import sql
from accord.vault import tables as t
from accord.vault._redis import REDIS_FAILURES, RedisGate
from accord.vault.cache import PENDING, Lacking, RedisMappings
from accord.vault.sequences import Sequences, lock_sequences, reserve_range, sequence_name
from accord.vault.sql import Found, Item
from accord.vault.tokens import format_token, split_token
from accord.vault.types import VaultError

__all__ = ["Mappings", "Resolution"]

log = logging.getLogger("accord.vault")
T = TypeVar("T")
_MAX_ATTEMPTS = 20


def original_aad(scope: str, token: str) -> bytes:
    """Binds an encrypted original to its row: copied to another scope or token, it no longer opens."""
    return f"accord-vault\0{scope}\0{token}".encode()


@dataclass(frozen=True)
class NewRow:
    item: Item
    token: str
    blob: bytes
    values: dict[str, object]


@dataclass
class Resolution:
    """What a set of tokens resolved to; ``missing`` includes the ``expired`` ones. The repr hides originals."""

    originals: dict[str, str] = field(default_factory=dict, repr=False)
    missing: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)


class Mappings:
    def __init__(self, engine: AsyncEngine, gate: RedisGate, sequences: Sequences, cipher: Cipher) -> None:
        self._engine = engine
        self._gate = gate
        self._sequences = sequences
        self._cipher = cipher
        self._redis = RedisMappings(gate.client) if gate.client is not None else None
        self.touch_every = timedelta(seconds=60)

    @property
    def redis(self) -> RedisMappings | None:
        return self._redis

    def fingerprint(self, data: bytes) -> bytes:
        return self._cipher.fingerprint(data)

    # ----- mask: field -> token ------------------------------------------------------------------

    async def tokens_for(self, scope: str, items: Sequence[Item], ttl: int) -> dict[bytes, str]:
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
        states = await redis.get_or_create(scope, items, ttl, allocate=False)
        assert not isinstance(states, Lacking)
        tokens, pending, unknown = _sort(items, states)
        publish: list[tuple[bytes, str, bytes]] = []
        if unknown:
            found = await self._live(scope, unknown, ttl)
            self._adopt(found, tokens, publish)
            absent = [item for item in unknown if item.field not in found]
            if absent:
                more_tokens, more_pending, _ = _sort(absent, await self._allocate(redis, scope, absent, ttl))
                tokens.update(more_tokens)
                pending += more_pending
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
        now = sql.now_utc()
        rows = [self._row(scope, item, token, now) for item, token in pending]
        async with write_tx(self._engine) as conn:
            found = await self._insert(conn, scope, rows, ttl)
        return found, [item for item, _ in pending if item.field not in found]

    async def _insert(self, conn: AsyncConnection, scope: str, rows: Sequence[NewRow], ttl: int) -> dict[bytes, Found]:
        """Insert in one fixed order (so PostgreSQL writers never wait in a cycle); losers adopt the live row."""
        ordered = sorted(rows, key=lambda row: row.item.field)
        inserted = await sql.insert_new(conn, [row.values for row in ordered])
        found = {row.item.field: Found(row.token, row.blob) for row in ordered if row.token in inserted}
        losers = [row.item for row in ordered if row.token not in inserted]
        if losers:
            found.update(await self._live(scope, losers, ttl, conn=conn))
        return found

    async def _via_db(self, scope: str, items: Sequence[Item], ttl: int) -> dict[bytes, str]:
        found = await self._live(scope, items, ttl)
        missing = [item for item in items if item.field not in found]
        if missing:
            async with write_tx(self._engine) as conn:
                found.update(await self._create(conn, scope, missing, ttl))
        return {item.field: found[item.field].token for item in items}

    async def _create(self, conn: AsyncConnection, scope: str, items: Sequence[Item], ttl: int) -> dict[bytes, Found]:
        """Inside one transaction: lock the sequences, re-check, number what is still missing, insert."""
        now = sql.now_utc()
        await lock_sequences(conn, (sequence_name(item.token_type) for item in items))
        found = await self._live(scope, items, ttl, conn=conn)
        still = sorted((item for item in items if item.field not in found), key=lambda item: item.token_type)
        rows: list[NewRow] = []
        for token_type, group in itertools.groupby(still, key=lambda item: item.token_type):
            members = list(group)
            numbers = await reserve_range(conn, sequence_name(token_type), len(members))
            rows += [
                self._row(scope, item, format_token(token_type, n), now)
                for item, n in zip(members, numbers, strict=True)
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
        if missing:
            await self._resolve_db(scope, missing, ttl, result, recache=recache)
        return result

    async def _resolve_db(
        self, scope: str, tokens: Sequence[str], ttl: int, result: Resolution, *, recache: bool
    ) -> None:
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

    # ----- helpers -------------------------------------------------------------------------------

    def _stale(self, found: Found, now: datetime, ttl: int) -> bool:
        return ttl > 0 and (found.last_used_at is None or found.last_used_at < now - self.touch_every)

    def _adopt(
        self, found: dict[bytes, Found], tokens: dict[bytes, str], publish: list[tuple[bytes, str, bytes]]
    ) -> None:
        for key, mapping in found.items():
            tokens[key] = mapping.token
            publish.append((key, mapping.token, mapping.blob))

    def _row(self, scope: str, item: Item, token: str, now: datetime) -> NewRow:
        blob = self._cipher.encrypt(item.original.encode(), aad=original_aad(scope, token))
        values: dict[str, object] = {
            "scope": scope,
            "token": token,
            "type": item.token_type,
            "number": split_token(token)[1],
            "fingerprint": item.fingerprint,
            "original": blob,
            "created_at": now,
            "last_used_at": now,
            "expired_at": None,
        }
        return NewRow(item, token, blob, values)

    def _open(self, scope: str, token: str, blob: bytes) -> str:
        return self._cipher.decrypt(blob, aad=original_aad(scope, token)).decode()


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
