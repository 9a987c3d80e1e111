"""Mappings on the database alone: get-or-create under locked sequences, look-up, and expiry.

The database decides every get-or-create through its unique constraint on (scope, type,
fingerprint); this is the whole vault when there is no Redis, and the fallback when Redis fails.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from accord.store.dialect import is_postgres
from accord.store.engine import read_tx, retry_deadlocks, write_tx
from accord.vault._sql import statements as sql
from accord.vault._sql import tables as t
from accord.vault._sql.sequences import lock_sequences, reserve_range
from accord.vault.records import Found, Item, Lookup, NewRow, is_stale, sequence_name
from accord.vault.sealing import Sealer
from accord.vault.tokens import format_token
from accord.vault.types import VaultError

__all__ = ["SqlMappings"]

log = logging.getLogger("accord.vault")
T = TypeVar("T")
_MAX_ATTEMPTS = 20  # eight processes creating the same tokens: deadlock victims are common and cheap to rerun


class SqlMappings:
    def __init__(self, engine: AsyncEngine, sealer: Sealer) -> None:
        self._engine = engine
        self._sealer = sealer

    # ----- mask: field -> token ------------------------------------------------------------------

    async def tokens_for(self, scope: str, items: Sequence[Item], ttl: int) -> dict[bytes, str]:
        return await retry_deadlocks(lambda: self._get_or_create(scope, items, ttl), attempts=_MAX_ATTEMPTS)

    async def _get_or_create(self, scope: str, items: Sequence[Item], ttl: int) -> dict[bytes, str]:
        found = await self.live(scope, items, ttl)
        missing = [item for item in items if item.field not in found]
        if missing:
            async with write_tx(self._engine) as conn:
                found.update(await self._create(conn, scope, missing, ttl))
        return {item.field: found[item.field].token for item in items}

    async def _create(self, conn: AsyncConnection, scope: str, items: Sequence[Item], ttl: int) -> dict[bytes, Found]:
        """Inside one transaction: lock the sequences, re-check, number what is still missing, insert."""
        await lock_sequences(conn, (sequence_name(item.token_type) for item in items))
        found = await self.live(scope, items, ttl, conn=conn)
        still = sorted((item for item in items if item.field not in found), key=lambda item: item.token_type)
        rows: list[NewRow] = []
        for token_type, group in itertools.groupby(still, key=lambda item: item.token_type):
            members = list(group)
            numbers = await reserve_range(conn, sequence_name(token_type), len(members))
            rows += [
                self._sealer.row(scope, item, format_token(token_type, n))
                for item, n in zip(members, numbers, strict=True)
            ]
        found.update(await self._insert(conn, scope, rows, ttl))
        if any(item.field not in found for item in items):
            raise VaultError("a mapping was created and expired concurrently; retry the call")
        return found

    async def persist(
        self, scope: str, pending: Sequence[tuple[Item, str]], ttl: int
    ) -> tuple[dict[bytes, Found], list[Item]]:
        """Make sure the database holds each pending token (one allocated elsewhere), or adopt the live row
        it lost to; returns what is live by field, and the items that still have no row."""
        return await retry_deadlocks(lambda: self._persist(scope, pending, ttl), attempts=_MAX_ATTEMPTS)

    async def _persist(
        self, scope: str, pending: Sequence[tuple[Item, str]], ttl: int
    ) -> tuple[dict[bytes, Found], list[Item]]:
        rows = sorted((self._sealer.row(scope, item, token) for item, token in pending), key=lambda r: r.item.field)
        if is_postgres(self._engine):
            # One statement is atomic on its own: no BEGIN and COMMIT round trips around it. A collision
            # is settled afterwards, from rows that are committed by then (the insert waited for them).
            async with sql.autocommit(self._engine) as conn:
                inserted = await sql.insert_new(conn, scope, sql.now_utc(), rows)
            if inserted == len(rows):
                found = {row.item.field: Found(row.token, row.blob) for row in rows}
            else:
                found = await self.live(scope, [row.item for row in rows], ttl)
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
        return await self.live(scope, [row.item for row in ordered], ttl, conn=conn)

    async def live(
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
        stale = {key: row.token for key, row in found.items() if is_stale(row.last_used_at, now, ttl)}
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

    async def lookup(self, scope: str, tokens: Sequence[str], ttl: int) -> Lookup:
        """Read the tokens' rows, count misses, and touch the live ones whose last use looks old."""
        now = sql.now_utc()
        async with read_tx(self._engine) as conn:
            rows = await sql.lookup_tokens(conn, scope, tokens)
        live = {token: row for token, row in rows.items() if not row.expired and row.blob is not None}
        found = Lookup(blobs={token: row.blob or b"" for token, row in live.items()})
        found.expired = sorted(token for token, row in rows.items() if row.expired)
        found.missing = [token for token in tokens if token not in live]
        stale = [token for token, row in live.items() if is_stale(row.last_used_at, now, ttl)]
        counts = {t.UNMASK_MISSES: len(found.missing), t.UNMASK_EXPIRED: len(found.expired)}
        confirmed: set[str] = set()
        if stale or any(counts.values()):
            async with write_tx(self._engine) as conn:
                confirmed = await sql.touch_tokens(conn, scope, stale, now) if stale else set()
                await sql.add_counts(conn, counts)
        found.confirmed = [token for token in live if token in confirmed or token not in stale]
        found.cacheable = [
            (_field(live[tok].token_type, live[tok].fingerprint), tok, live[tok].blob or b"") for tok in found.confirmed
        ]
        return found

    async def invalidate(self) -> int:
        return 0  # nothing is cached in front of the database

    # ----- retention -----------------------------------------------------------------------------

    async def expire_idle(self, ttl: int, *, limit: int) -> int:
        """Without Redis the database's last uses are the whole truth: every idle candidate expires."""
        now = sql.now_utc()
        before = now - timedelta(seconds=ttl)
        dead: dict[str, list[str]] = {}
        for scope, token, _ in await self.idle_since(before, limit):
            dead.setdefault(scope, []).append(token)
        return await self.settle({}, dead, before, now)

    async def idle_since(self, before: datetime, limit: int) -> list[tuple[str, str, bytes]]:
        async with read_tx(self._engine) as conn:
            return await sql.select_idle(conn, before, limit)

    async def settle(
        self,
        alive: Mapping[str, Mapping[datetime, Sequence[str]]],
        dead: Mapping[str, Sequence[str]],
        before: datetime,
        now: datetime,
    ) -> int:
        """One transaction: move recent uses forward, tombstone what is still idle; returns how many expired."""
        expired = 0
        async with write_tx(self._engine) as conn:
            for scope, by_time in alive.items():
                for seen_at, tokens in by_time.items():
                    await sql.touch_tokens(conn, scope, tokens, seen_at)
            for scope, tokens in dead.items():
                expired += await sql.tombstone(conn, scope, tokens, before, now)
        return expired


def _field(token_type: str, fingerprint: bytes | None) -> bytes:
    return token_type.encode() + b":" + (fingerprint or b"")
