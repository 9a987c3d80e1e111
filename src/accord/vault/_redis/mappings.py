"""Mappings through Redis, over the database: get-or-create in one script per batch, plus a cache of rows.

Per scope there are three hashes (see accord.core.redis_keys): fingerprint field -> token,
token -> encrypted original, token -> last use. An entry is *pending* ("?" + token) from the
moment GET_OR_CREATE allocates it until some process has made sure the database holds it; only
then is it published with its encrypted original. Whoever receives a pending token persists it
before handing it out, so every token a caller ever sees is in the database.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

from accord.bus.redis_conn import RedisClient
from accord.core.redis_keys import RedisKeys
from accord.vault._redis.gate import REDIS_FAILURES, RedisGate
from accord.vault._redis.scripts import GET_OR_CREATE, PUBLISH, RESOLVE, SWEEP
from accord.vault._redis.sequences import RedisCounters
from accord.vault._sql import statements as sql
from accord.vault._sql.mappings import SqlMappings
from accord.vault.records import Found, Item, Lookup, sequence_name
from accord.vault.types import VaultError

__all__ = ["Lacking", "RedisMappings", "RedisOverSqlMappings"]

ScriptArg: TypeAlias = bytes | str | int | float
PENDING = "?"
FINGERPRINT_BYTES = 32  # HMAC-SHA256: the scripts cut packed fingerprints at this width
_CHUNK = 500
_MAX_ATTEMPTS = 20


def _checked(item: Item) -> Item:
    if len(item.fingerprint) != FINGERPRINT_BYTES:
        raise VaultError(f"a fingerprint must be {FINGERPRINT_BYTES} bytes, got {len(item.fingerprint)}")
    return item


@dataclass(frozen=True)
class Lacking:
    """Sequences that need a fresh range before GET_OR_CREATE can allocate: type -> numbers needed."""

    needed: dict[str, int]


class RedisMappings:
    """The scripts on one client, with their arguments packed (see accord.vault._redis.scripts)."""

    def __init__(self, client: RedisClient, keys: RedisKeys) -> None:
        self._client = client
        self._keys = keys
        self._get_or_create = client.register_script(GET_OR_CREATE)
        self._publish = client.register_script(PUBLISH)
        self._resolve = client.register_script(RESOLVE)
        self._sweep = client.register_script(SWEEP)

    async def get_or_create(
        self, scope: str, items: Sequence[Item], ttl: int, *, allocate: bool
    ) -> list[str] | Lacking:
        """One state per item, in the order of ``items`` (see GET_OR_CREATE)."""
        fingerprints, _, used = self._keys.vault_scope(scope)
        groups: dict[str, list[Item]] = collections.defaultdict(list)
        for item in items:
            groups[item.token_type].append(_checked(item))
        types = sorted(groups)
        args: list[ScriptArg] = [ttl, len(types)]
        for position, name in enumerate(types):
            args += [name, 3 + position if allocate else 0, b"".join(item.fingerprint for item in groups[name])]
        sequences = [self._keys.sequence_prefix + sequence_name(name) for name in types] if allocate else []
        reply = await self._get_or_create(keys=[fingerprints, used, *sequences], args=args)
        if reply and reply[0] == b"!":
            pairs = reply[1:]
            return Lacking({types[int(pairs[i]) - 3]: int(pairs[i + 1]) for i in range(0, len(pairs), 2)})
        states = iter(reply)
        by_field = {item.field: next(states).decode() for name in types for item in groups[name]}
        return [by_field[item.field] for item in items]

    async def publish(self, scope: str, entries: Sequence[tuple[bytes, str, bytes]]) -> None:
        """Make (field, token, encrypted original) entries live; the fields' types are their tokens' types."""
        for start in range(0, len(entries), _CHUNK):
            chunk = entries[start : start + _CHUNK]
            args: list[ScriptArg] = [
                "\n".join(token for _, token, _ in chunk),
                b"".join(field[-FINGERPRINT_BYTES:] for field, _, _ in chunk),
                ",".join(str(len(blob)) for _, _, blob in chunk),
                b"".join(blob for _, _, blob in chunk),
            ]
            await self._publish(keys=list(self._keys.vault_scope(scope)), args=args)

    async def resolve(self, scope: str, tokens: Sequence[str]) -> list[bytes | None]:
        _, token_hash, used = self._keys.vault_scope(scope)
        blobs: list[bytes | None] = []
        for start in range(0, len(tokens), _CHUNK):
            blobs += await self._resolve(keys=[token_hash, used], args=list(tokens[start : start + _CHUNK]))
        return blobs

    async def sweep(self, scope: str, candidates: Sequence[tuple[str, bytes]], ttl: int) -> list[int]:
        """Per (token, field): the Redis last use if recent, else 0 (and the mapping is gone from Redis)."""
        result: list[int] = []
        for start in range(0, len(candidates), _CHUNK):
            args: list[ScriptArg] = [ttl]
            for token, field in candidates[start : start + _CHUNK]:
                args += [token, field]
            result += [int(value) for value in await self._sweep(keys=list(self._keys.vault_scope(scope)), args=args)]
        return result

    async def invalidate(self) -> int:
        """Forget every scope's hashes (after a key rotation their blobs are sealed with the old key).

        Safe at any time: it is what a Redis restart does, and the database holds every mapping.
        """
        dropped = 0
        async for key in self._client.scan_iter(match=self._keys.vault_prefix + "*", count=1000):
            dropped += int(await self._client.unlink(key))
        return dropped


class RedisOverSqlMappings:
    """Redis serialises allocation and caches rows; the database holds every mapping and settles races.

    Its methods let Redis errors through: the caller (FallbackMappings) then asks the database alone.
    """

    def __init__(self, redis: RedisMappings, db: SqlMappings, counters: RedisCounters, gate: RedisGate) -> None:
        self.redis = redis
        self._db = db
        self._counters = counters
        self._gate = gate

    async def tokens_for(self, scope: str, items: Sequence[Item], ttl: int) -> dict[bytes, str]:
        """One script call finds or allocates every token; new ones are persisted, then published.

        The database is not asked first about originals Redis does not know (after a Redis restart it
        knows none): a new token is allocated for them, its insert collides with the live row on
        (scope, type, fingerprint), and the caller adopts that row's token. The number is skipped.
        """
        tokens, pending = _sort(items, await self._allocate(scope, items, ttl))
        publish: list[tuple[bytes, str, bytes]] = []
        if pending:
            persisted, leftovers = await self._db.persist(scope, pending, ttl)
            _adopt(persisted, tokens, publish)
            if leftovers:
                tokens.update(await self._db.tokens_for(scope, leftovers, ttl))
        if publish:
            await self.redis.publish(scope, publish)
        return tokens

    async def _allocate(self, scope: str, items: Sequence[Item], ttl: int) -> list[str]:
        for _ in range(_MAX_ATTEMPTS):
            reply = await self.redis.get_or_create(scope, items, ttl, allocate=True)
            if not isinstance(reply, Lacking):
                return reply
            for token_type, needed in sorted(reply.needed.items()):
                await self._counters.refill(sequence_name(token_type), needed)
        raise VaultError(f"could not allocate tokens for {len(items)} values after {_MAX_ATTEMPTS} attempts")

    async def lookup(self, scope: str, tokens: Sequence[str], ttl: int) -> Lookup:
        """Redis first; tokens it does not know are read from the database and cached for the next time."""
        blobs = await self.redis.resolve(scope, tokens)
        found = Lookup(blobs={token: blob for token, blob in zip(tokens, blobs, strict=True) if blob is not None})
        found.confirmed = list(found.blobs)
        missing = [token for token in tokens if token not in found.blobs]
        if not missing:
            return found
        from_db = await self._db.lookup(scope, missing, ttl)
        found.blobs |= from_db.blobs
        found.missing, found.expired = from_db.missing, from_db.expired
        found.confirmed += from_db.confirmed
        if from_db.cacheable:
            try:
                await self.redis.publish(scope, from_db.cacheable)
            except REDIS_FAILURES as exc:  # the answer is complete; only the cache missed out
                self._gate.failed(exc)
        return found

    async def expire_idle(self, ttl: int, *, limit: int) -> int:
        """Ask Redis about every mapping the database thinks is idle: recent uses are written back,
        the rest are removed from Redis and then tombstoned in the database."""
        now = sql.now_utc()
        before = now - timedelta(seconds=ttl)
        # Rows idle for half the ttl are looked at too, so their database timestamps keep up with
        # Redis and a Redis restart cannot make a busy mapping look idle for long.
        by_scope: dict[str, list[tuple[str, bytes]]] = collections.defaultdict(list)
        for scope, token, field in await self._db.idle_since(now - timedelta(seconds=ttl / 2), limit):
            by_scope[scope].append((token, field))
        alive: dict[str, dict[datetime, list[str]]] = collections.defaultdict(lambda: collections.defaultdict(list))
        dead: dict[str, list[str]] = collections.defaultdict(list)
        for scope, entries in by_scope.items():
            used = await self.redis.sweep(scope, entries, ttl)
            for (token, _), seen in zip(entries, used, strict=True):
                if seen:
                    alive[scope][datetime.fromtimestamp(seen, UTC)].append(token)
                else:
                    dead[scope].append(token)
        return await self._db.settle(alive, dead, before, now)


def _sort(items: Sequence[Item], states: Sequence[str]) -> tuple[dict[bytes, str], list[tuple[Item, str]]]:
    """Split a GET_OR_CREATE reply into live tokens and pending tokens (to persist)."""
    tokens: dict[bytes, str] = {}
    pending: list[tuple[Item, str]] = []
    for item, state in zip(items, states, strict=True):
        if state.startswith(PENDING):
            pending.append((item, state[len(PENDING) :]))
        elif state:
            tokens[item.field] = state
    return tokens, pending


def _adopt(found: dict[bytes, Found], tokens: dict[bytes, str], publish: list[tuple[bytes, str, bytes]]) -> None:
    for key, mapping in found.items():
        tokens[key] = mapping.token
        publish.append((key, mapping.token, mapping.blob))
