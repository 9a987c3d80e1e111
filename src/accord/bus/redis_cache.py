"""A cache of current values in Redis, marked with the revision it reflects.

A fleet of cold-starting pods, or a pod that starts while the database is down, can load it
instead of the database. Redis may lose it at any time (it keeps nothing on disk): when the
marker is missing, the first process to notice rebuilds it from the database under a lock.
"""

from __future__ import annotations

import logging

from accord.bus.auth import BusAuth
from accord.bus.redis_bus import REDIS_MESSAGE_MAX_BYTES
from accord.bus.redis_conn import REDIS_DOWN_ERRORS, RedisClient
from accord.bus.wire import encode_change
from accord.core.errors import StoreUnavailableError
from accord.core.redis_keys import RedisKeys
from accord.store.entry_codec import decode_entry, encode_entry
from accord.store.types import Change, Entry, KVStore

log = logging.getLogger("accord.bus.cache")
REBUILD_LOCK_MS = 30_000

# KEYS[1] values hash, KEYS[2] revision marker, KEYS[3] pending revisions (sorted set)
# ARGV[1] key, ARGV[2] revision, ARGV[3] "put" or "delete", ARGV[4] encoded entry (put only),
# ARGV[5] change bus channel, ARGV[6] signed bus message ("" publishes nothing)
# Publishes the change first (whether or not the cache is complete), so one round trip both announces
# and caches it; the script is atomic, so no reader sees the message without the cache having it.
# Applies one change when the cache is complete (marker present) and the change is newer than what
# the cache holds for that key. The marker only advances over a contiguous run of applied revisions,
# so it never claims a revision whose writer did not update the cache (a writer without Redis).
APPLY_CHANGE = """
if ARGV[6] and ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local rev = tonumber(ARGV[2])
local held = redis.call('HGET', KEYS[1], ARGV[1])
local newer = true
if held then
  local held_rev = tonumber(cjson.decode(held)['mod_revision'])
  if held_rev and held_rev >= rev then newer = false end
end
if newer then
  if ARGV[3] == 'delete' then
    redis.call('HDEL', KEYS[1], ARGV[1])
  else
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
  end
end
local marker = tonumber(redis.call('GET', KEYS[2]))
if rev > marker then
  redis.call('ZADD', KEYS[3], rev, ARGV[2])
  while redis.call('ZSCORE', KEYS[3], tostring(marker + 1)) do
    marker = marker + 1
    redis.call('ZREM', KEYS[3], tostring(marker))
  end
  redis.call('SET', KEYS[2], marker)
end
return 1
"""


class RedisValueCache:
    """Current values by key plus the revision they reflect (the ValueCache of a process with Redis)."""

    def __init__(self, client: RedisClient, auth: BusAuth) -> None:
        self._client = client
        self._auth = auth
        self._apply = client.register_script(APPLY_CHANGE)
        self._missed_update = False

    async def apply(self, change: Change, entry: Entry | None) -> None:
        """Best effort: the database already has the change, so a Redis error only costs freshness.

        A missed update is remembered: later updates would raise the marker past it, so the next
        ``ensure`` invalidates the cache and rebuilds it rather than serve a value the marker misdescribes.
        """
        await self._run(change, entry, publish=False)

    async def apply_and_publish(self, change: Change, entry: Entry | None) -> bool:
        """Update the cache and publish ``change`` on the deployment's bus channel in one round trip.

        False when Redis did not answer: the cache update is then remembered as missed, and the caller
        announces the change on its bus (whose fallback carries it).
        """
        return await self._run(change, entry, publish=True)

    async def _run(self, change: Change, entry: Entry | None, *, publish: bool) -> bool:
        payload = encode_entry(entry) if entry is not None else ""
        keys = await self._auth.keys()
        message = ""
        if publish:
            message = await self._auth.seal(encode_change(change, max_bytes=REDIS_MESSAGE_MAX_BYTES))
        try:
            await self._apply(
                keys=[keys.cache_values, keys.cache_revision, keys.cache_pending],
                args=[change.key, change.revision, change.op, payload, keys.changes_channel, message],
            )
        except REDIS_DOWN_ERRORS as exc:
            self._missed_update = True
            log.debug("cache update skipped, redis unavailable: %s", exc)
            return False
        return True

    async def refresh(self, store: KVStore, checked_revision: int) -> None:
        """Best effort: drop a cache behind ``checked_revision``, then rebuild it if it is gone.

        Any failure only costs freshness (the database is the truth), and must not stop the periodic
        check that calls this, so nothing escapes.
        """
        try:
            await self.invalidate_if_behind(checked_revision)
            await self.ensure(store)
        except Exception as exc:
            log.debug("cache refresh skipped: %s", exc)

    async def invalidate_if_behind(self, revision: int) -> bool:
        """Drop the marker if the cache reflects less than ``revision``, a revision committed a check ago.

        Writers that run without Redis (a CLI, a process whose Redis is down) never update the cache;
        without this the marker would move past their changes and misdescribe the cache forever.
        """
        keys = await self._auth.keys()
        marker = await self._client.get(keys.cache_revision)
        if marker is None or int(marker) >= revision:
            return False
        log.info("the redis value cache is at revision %d, behind %d: rebuilding it", int(marker), revision)
        await self._client.delete(keys.cache_revision)
        return True

    async def invalidate(self) -> None:
        keys = await self._auth.keys()
        await self._client.delete(keys.cache_revision)  # without its marker the cache is rebuilt when next checked

    async def is_complete(self) -> bool:
        keys = await self._auth.keys()
        return bool(await self._client.exists(keys.cache_revision))

    async def ensure(self, store: KVStore) -> bool:
        """Rebuild from the store if the marker is gone (or this process missed an update); True if it rebuilt."""
        keys = await self._auth.keys()
        await self._client.set(self._auth.pointer_key, keys.deployment_id)
        if self._missed_update:
            await self._client.delete(keys.cache_revision)
            self._missed_update = False
        if await self.is_complete():
            return False
        if not await self._client.set(keys.cache_rebuild_lock, b"1", nx=True, px=REBUILD_LOCK_MS):
            return False
        try:
            revision, entries = await store.snapshot()
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(keys.cache_values, keys.cache_pending)
                if entries:
                    pipe.hset(keys.cache_values, mapping={e.key: encode_entry(e) for e in entries})
                pipe.set(keys.cache_revision, revision)
                await pipe.execute()
            log.info("rebuilt the redis value cache from the database at revision %d (%d keys)", revision, len(entries))
            return True
        finally:
            await self._client.delete(keys.cache_rebuild_lock)

    async def load(self) -> tuple[int, list[Entry]] | None:
        """The cached snapshot, or None when the cache is not complete or Redis does not answer."""
        try:
            keys = await self._keys_even_offline()
            if keys is None:
                return None
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.get(keys.cache_revision)
                pipe.hgetall(keys.cache_values)
                marker, values = await pipe.execute()
        except REDIS_DOWN_ERRORS:
            return None
        if marker is None:
            return None
        return int(marker), [decode_entry(raw) for raw in values.values()]

    async def _keys_even_offline(self) -> RedisKeys | None:
        """The namespace from the database, else from the pointer an earlier process left in Redis."""
        try:
            return await self._auth.keys()
        except StoreUnavailableError:
            noted = await self._client.get(self._auth.pointer_key)
            return RedisKeys(noted.decode() if isinstance(noted, bytes) else str(noted)) if noted else None
