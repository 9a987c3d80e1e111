"""Every Lua script of the vault, each with a KEYS/ARGV header: they are the atomic steps Redis takes for it.

Mappings (see accord.core.redis_keys): per scope three hashes, fingerprint field -> token, token ->
encrypted original, token -> last use. Sequences: one hash per name, ``n`` (last issued) and ``max``
(top of the range the database reserved for it).
"""

from __future__ import annotations

__all__ = ["GET_OR_CREATE", "INSTALL_RANGE", "NEXT", "PUBLISH", "RESOLVE", "SWEEP"]

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

# KEYS[1] the sequence hash; ARGV[1] how many numbers to take.
# Returns the last number taken, or 0 when the hash is missing (Redis restarted) or its range has
# too little room left; then nothing changed and the caller donates a range with INSTALL_RANGE.
NEXT = """
local max = tonumber(redis.call('HGET', KEYS[1], 'max'))
if not max then return 0 end
local n = tonumber(redis.call('HGET', KEYS[1], 'n')) + tonumber(ARGV[1])
if n > max then return 0 end
redis.call('HSET', KEYS[1], 'n', n)
return n
"""

# KEYS[1] the sequence hash; ARGV[1] lo, ARGV[2] hi: the database reserved (lo, hi] for this caller alone.
# Seeds a missing hash, extends a range that ends at lo, or jumps past an older range (its rest is
# skipped). A range below the installed one is refused (returns 0) and never used.
INSTALL_RANGE = """
local max = tonumber(redis.call('HGET', KEYS[1], 'max'))
local lo = tonumber(ARGV[1])
if max and lo < max then return 0 end
if max and lo == max then
  redis.call('HSET', KEYS[1], 'max', ARGV[2])
else
  redis.call('HSET', KEYS[1], 'n', ARGV[1], 'max', ARGV[2])
end
return 1
"""
