"""The Redis side of mappings: get-or-create in one script per batch, plus a cache of database rows.

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
from typing import TypeAlias

import redis.asyncio as aioredis

from accord.core.redis_keys import SEQUENCE_PREFIX, VAULT_FINGERPRINTS, VAULT_PREFIX, VAULT_TOKENS, VAULT_USED
from accord.vault.sequences import sequence_name
from accord.vault.sql import Item
from accord.vault.types import VaultError

__all__ = ["GET_OR_CREATE", "PUBLISH", "RESOLVE", "SWEEP", "HotOriginals", "Lacking", "RedisMappings"]

ScriptArg: TypeAlias = bytes | str | int | float
PENDING = "?"
FINGERPRINT_BYTES = 32  # HMAC-SHA256: the scripts cut packed fingerprints at this width
_CHUNK = 500

# KEYS[1] fingerprint hash, KEYS[2] last-use hash of the scope; KEYS[3..] sequence hashes (one per type)
# ARGV[1] idle ttl in seconds (0: none), ARGV[2] group count, then per group (one per token type): the type,
#   the index of its sequence in KEYS (0: look up only), its items' fingerprints concatenated (32 bytes each;
#   an item's field is "<TYPE>:<fingerprint>"). Packed so, a batch of any size is a few arguments.
# Returns one string per item, groups in order: the live token; "?"..token when pending (allocated, maybe
# not yet in the database); "" when missing or idle longer than the ttl and look-up only. Items with a
# sequence that have no usable entry get the next number of that sequence and a pending entry. Allocation is
# all or nothing: when a sequence hash is missing (Redis restarted) or has too little room, nothing is
# allocated and the reply is {"!", key index, numbers needed, ...} so the caller can donate ranges.
GET_OR_CREATE = """
local now = tonumber(redis.call('TIME')[1])
local ttl = tonumber(ARGV[1])
local out, need, alloc, fields, types, seqs = {}, {}, {}, {}, {}, {}
local i = 0
for g = 1, tonumber(ARGV[2]) do
  local token_type, seq, fps = ARGV[3 * g], tonumber(ARGV[3 * g + 1]), ARGV[3 * g + 2]
  for at = 1, #fps, 32 do
    i = i + 1
    local field = token_type .. ':' .. string.sub(fps, at, at + 31)
    fields[i], types[i], seqs[i] = field, token_type, seq
    local held = redis.call('HGET', KEYS[1], field)
    local state = ''
    if held and string.sub(held, 1, 1) == '?' then
      state = held
    elseif held then
      local used = tonumber(redis.call('HGET', KEYS[2], held))
      if ttl == 0 or (used and now - used <= ttl) then
        state = held
        redis.call('HSET', KEYS[2], held, now)
      end
    end
    if state == '' and seq > 0 then
      need[seq] = (need[seq] or 0) + 1
      alloc[#alloc + 1] = i
    end
    out[i] = state
  end
end
local lacking, last = {'!'}, {}
for seq, count in pairs(need) do
  local h = redis.call('HMGET', KEYS[seq], 'n', 'max')
  local n, max = tonumber(h[1]), tonumber(h[2])
  if not max or n + count > max then
    lacking[#lacking + 1] = seq
    lacking[#lacking + 1] = count
  else
    last[seq] = n
  end
end
if #lacking > 1 then return lacking end
for _, i in ipairs(alloc) do
  local seq = seqs[i]
  last[seq] = last[seq] + 1
  local token = types[i] .. '_' .. string.format('%03d', last[seq])
  redis.call('HSET', KEYS[1], fields[i], '?' .. token)
  redis.call('HSET', KEYS[2], token, now)
  out[i] = '?' .. token
end
for seq, n in pairs(last) do redis.call('HSET', KEYS[seq], 'n', n) end
return out
"""

# KEYS[1] fingerprint hash, KEYS[2] token hash, KEYS[3] last-use hash of the scope
# ARGV[1] tokens joined by newlines; ARGV[2] their fingerprints concatenated (32 bytes each; a field is
# "<TYPE>:<fingerprint>", the type read off the token); ARGV[3] the lengths of their encrypted originals,
# comma-separated; ARGV[4] those originals concatenated. Mappings the database holds as live.
# Makes each one live in Redis in one step, so a live fingerprint entry always has its original.
PUBLISH = """
local now = redis.call('TIME')[1]
local fps, blobs, lengths = ARGV[2], ARGV[4], {}
for length in string.gmatch(ARGV[3], '%d+') do lengths[#lengths + 1] = tonumber(length) end
local i, at = 0, 1
for token in string.gmatch(ARGV[1], '[^\\n]+') do
  i = i + 1
  local field = string.match(token, '^(.*)_%d+$') .. ':' .. string.sub(fps, 32 * i - 31, 32 * i)
  redis.call('HSET', KEYS[1], field, token)
  redis.call('HSET', KEYS[2], token, string.sub(blobs, at, at + lengths[i] - 1))
  redis.call('HSET', KEYS[3], token, now)
  at = at + lengths[i]
end
return i
"""

# KEYS[1] token hash, KEYS[2] last-use hash of the scope; ARGV: tokens
# Returns the encrypted original of each token (nil where Redis has none) and marks the found ones used.
RESOLVE = """
local now = redis.call('TIME')[1]
local blobs = redis.call('HMGET', KEYS[1], unpack(ARGV))
for i = 1, #ARGV do
  if blobs[i] then redis.call('HSET', KEYS[2], ARGV[i], now) end
end
return blobs
"""

# KEYS[1] fingerprint hash, KEYS[2] token hash, KEYS[3] last-use hash of the scope
# ARGV[1] idle ttl in seconds; then pairs of token, field: mappings the database thinks are idle.
# Returns per pair the last use (unix seconds) if Redis saw one within the ttl; otherwise 0, after
# removing the mapping from Redis so no instance hands it out while the database expires it.
SWEEP = """
local now = tonumber(redis.call('TIME')[1])
local ttl = tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV, 2 do
  local token, field = ARGV[i], ARGV[i + 1]
  local used = tonumber(redis.call('HGET', KEYS[3], token))
  if used and now - used <= ttl then
    out[#out + 1] = used
  else
    local held = redis.call('HGET', KEYS[1], field)
    if held == token or held == '?' .. token then redis.call('HDEL', KEYS[1], field) end
    redis.call('HDEL', KEYS[2], token)
    redis.call('HDEL', KEYS[3], token)
    out[#out + 1] = 0
  end
end
return out
"""


def scope_keys(scope: str) -> tuple[str, str, str]:
    base = f"{VAULT_PREFIX}{{{scope}}}:"
    return base + VAULT_FINGERPRINTS, base + VAULT_TOKENS, base + VAULT_USED


def _checked(item: Item) -> Item:
    if len(item.fingerprint) != FINGERPRINT_BYTES:
        raise VaultError(f"a fingerprint must be {FINGERPRINT_BYTES} bytes, got {len(item.fingerprint)}")
    return item


@dataclass(frozen=True)
class Lacking:
    """Sequences that need a fresh range before GET_OR_CREATE can allocate: type -> numbers needed."""

    needed: dict[str, int]


class RedisMappings:
    def __init__(self, client: aioredis.Redis) -> None:
        self._get_or_create = client.register_script(GET_OR_CREATE)
        self._publish = client.register_script(PUBLISH)
        self._resolve = client.register_script(RESOLVE)
        self._sweep = client.register_script(SWEEP)

    async def get_or_create(
        self, scope: str, items: Sequence[Item], ttl: int, *, allocate: bool
    ) -> list[str] | Lacking:
        """One state per item, in the order of ``items`` (see GET_OR_CREATE)."""
        fingerprints, _, used = scope_keys(scope)
        groups: dict[str, list[Item]] = collections.defaultdict(list)
        for item in items:
            groups[item.token_type].append(_checked(item))
        types = sorted(groups)
        args: list[ScriptArg] = [ttl, len(types)]
        for position, name in enumerate(types):
            args += [name, 3 + position if allocate else 0, b"".join(item.fingerprint for item in groups[name])]
        sequences = [SEQUENCE_PREFIX + sequence_name(name) for name in types] if allocate else []
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
            await self._publish(keys=list(scope_keys(scope)), args=args)

    async def resolve(self, scope: str, tokens: Sequence[str]) -> list[bytes | None]:
        _, token_hash, used = scope_keys(scope)
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
            result += [int(value) for value in await self._sweep(keys=list(scope_keys(scope)), args=args)]
        return result


class HotOriginals:
    """token -> original for tokens Redis or the database confirmed live less than ``hold`` seconds ago.

    Unmasking the same tokens again and again (a stream's deltas, a chat's turns) then needs no round
    trip. A mapping confirmed live cannot expire within ``hold`` (expiry needs it idle for the whole
    retention; a tenth of it at most is held here), and this vault's own sweep clears the cache. Uses
    served from here are not recorded, so Redis' record of a token's last use lags by up to ``hold``.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.hold = 1.0
        self._entries: collections.OrderedDict[tuple[str, str], tuple[str, float]] = collections.OrderedDict()

    def get(self, scope: str, token: str, now: float) -> str | None:
        entry = self._entries.get((scope, token))
        if entry is None or now - entry[1] > self.hold:
            return None
        return entry[0]

    def put(self, scope: str, token: str, original: str, now: float) -> None:
        if self.size <= 0:
            return
        self._entries[(scope, token)] = (original, now)
        self._entries.move_to_end((scope, token))
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
