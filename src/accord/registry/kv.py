"""Consul's KV store over the server's replica: reads from memory, writes as compare-and-set revisions.

Every write names the version it read (``expect_version``), so two replicas racing on one key
cannot both win: the loser's write is a ``ConflictError`` and its answer is ``false``, as Consul's
CAS answers. Indexes come from memory too: an entry's ``mod_revision``, and for listings the
newest revision under the prefix, deletes included — the delete revisions (tombstones) are kept
here, fed by the replica's changes and loaded from the store's history at start. After a full
reload (a restored database, compacted history) the reload's revision is a floor under every
index, so no listing can look unchanged across it.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from accord.core.errors import ConflictError, ConsulApiError, NotFoundError
from accord.core.keys import MAX_VALUE_BYTES
from accord.registry.kvkeys import (
    KV_PREFIX,
    KvMeta,
    decode_key,
    encode_key,
    is_secret_kv_key,
    pack_value,
    store_prefix,
    unpack_value,
)
from accord.replica.replica import Replica
from accord.store.types import Change, Entry, PutItem, WriteContext

__all__ = ["KvItem", "KvService", "SessionLookup", "too_large"]

SessionLookup = Callable[[str], bool]


def too_large(size: int) -> ConsulApiError:
    return ConsulApiError(
        413,
        f"Request body({size} bytes) too large, max size: {MAX_VALUE_BYTES} bytes. See "
        "https://developer.hashicorp.com/consul/docs/agent/config/config-files#kv_max_value_size.",
    )


@dataclass(frozen=True, slots=True)
class KvItem:
    """One Consul KV entry as read: key, metadata, raw bytes (opened when sealed), the store entry."""

    key: str
    meta: KvMeta
    raw: bytes
    entry: Entry

    @property
    def store_key(self) -> str:
        return self.entry.key

    def dir_entry(self, *, with_value: bool = True) -> dict[str, Any]:
        """Consul's DirEntry JSON (field order as Consul emits it); ``Value`` is base64 or null."""
        out: dict[str, Any] = {
            "LockIndex": self.meta.lock_index,
            "Key": self.key,
            "Flags": self.meta.flags,
            "Value": base64.b64encode(self.raw).decode("ascii") if with_value and self.raw else None,
        }
        if self.meta.session:
            out["Session"] = self.meta.session
        out["CreateIndex"] = self.entry.create_revision
        out["ModifyIndex"] = self.entry.mod_revision
        return out


class KvService:
    """KV reads, writes, indexes and lock-delays for one server replica."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self._tombstones: dict[str, int] = {}  # Consul key -> revision of its last delete (key absent now)
        self._floor = 0  # the revision of the last full reload: no index answers below it
        self._lock_delays: dict[str, float] = {}  # store key -> wall-clock time until which acquire is refused
        self._unsubscribe = [replica.on_change(self._on_change), replica.on_reload(self._on_reload)]

    async def start(self) -> None:
        """Load the tombstones from history (keys deleted and not written since)."""
        for store_key, revision in (await self.replica.store.latest_deletes(KV_PREFIX)).items():
            if self.replica.entry(store_key) is None:
                self._tombstones.setdefault(decode_key(store_key), revision)

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()

    # ----- indexes ------------------------------------------------------------------------------

    def global_index(self) -> int:
        """The KV table's index: newest write or delete of any key, never below the reload floor."""
        newest = max((e.mod_revision for e in self.replica.entries(KV_PREFIX)), default=0)
        return max(newest, max(self._tombstones.values(), default=0), self._floor, 1)

    def key_index(self, key: str) -> int:
        entry = self.replica.entry(encode_key(key))
        return max(entry.mod_revision, self._floor) if entry else self.global_index()

    def prefix_index(self, prefix: str) -> int:
        """Newest revision under ``prefix`` (deletes included); the table's index when nothing ever lived there."""
        if prefix == "":
            return self.global_index()
        newest = max((item.entry.mod_revision for item in self._under(prefix)), default=0)
        deleted = max((rev for key, rev in self._tombstones.items() if key.startswith(prefix)), default=0)
        found = max(newest, deleted)
        return max(found, self._floor) if found else self.global_index()

    # ----- reads --------------------------------------------------------------------------------

    def get(self, key: str) -> KvItem | None:
        entry = self.replica.entry(encode_key(key))
        return self._item(entry) if entry else None

    def items(self, prefix: str) -> list[KvItem]:
        """Entries whose Consul key starts with ``prefix`` (a string prefix), sorted by key."""
        return sorted(self._under(prefix), key=lambda item: item.key)

    def _under(self, prefix: str) -> list[KvItem]:
        items = []
        for entry in self.replica.entries(store_prefix(prefix)):
            key = decode_key(entry.key)
            if key.startswith(prefix):
                items.append(self._item(entry, key))
        return items

    @staticmethod
    def meta_of(entry: Entry) -> KvMeta:
        return unpack_value(entry.value)[0]

    def _item(self, entry: Entry, key: str | None = None) -> KvItem:
        meta, raw = unpack_value(entry.value)
        if entry.secret:
            raw = self.replica.store.cipher().decrypt(raw, aad=entry.key.encode())
        return KvItem(key if key is not None else decode_key(entry.key), meta, raw, entry)

    # ----- writes -------------------------------------------------------------------------------

    def check_value(self, raw: bytes) -> None:
        if len(raw) > MAX_VALUE_BYTES:
            raise too_large(len(raw))

    async def put(
        self,
        key: str,
        raw: bytes,
        *,
        flags: int = 0,
        cas: int | None = None,
        acquire: str | None = None,
        release: str | None = None,
        session_exists: SessionLookup | None = None,
        ctx: WriteContext | None = None,
    ) -> bool:
        """Consul's PUT: ``True`` when written (or identical already), ``False`` when a condition failed."""
        self.check_value(raw)
        store_key = encode_key(key)
        current = self.get(key)
        if cas is not None:
            if cas == 0 and current is not None:
                return False
            if cas > 0 and (current is None or current.entry.mod_revision != cas):
                return False
        meta = self._locked_meta(store_key, current, flags, acquire, release, session_exists)
        if meta is None:
            return False
        if current is not None and current.meta == meta and current.raw == raw:
            return True  # Consul writes nothing for an identical entry (no new index), and answers true
        try:
            await self.replica.put_keys([self.put_item(store_key, meta, raw, current)], ctx=ctx)
        except ConflictError:
            return False
        return True

    def _locked_meta(
        self,
        store_key: str,
        current: KvItem | None,
        flags: int,
        acquire: str | None,
        release: str | None,
        session_exists: SessionLookup | None,
    ) -> KvMeta | None:
        """The entry's metadata after the write, or None when the acquire/release must answer false."""
        meta = KvMeta(flags, current.meta.lock_index if current else 0, current.meta.session if current else "")
        held = current.meta.session if current else ""
        if acquire is not None:
            if session_exists is None or not session_exists(acquire):
                raise ConsulApiError(500, f'invalid session "{acquire}"')
            if held == acquire:
                return meta
            if held or self.lock_delayed(store_key):
                return None
            return KvMeta(flags, meta.lock_index + 1, acquire)
        if release is not None:
            return KvMeta(flags, meta.lock_index, "") if held == release and current else None
        return meta

    def put_item(self, store_key: str, meta: KvMeta, raw: bytes, current: KvItem | None) -> PutItem:
        """The store write of one entry, conditional on the version it was read at (0: must not exist)."""
        secret = is_secret_kv_key(decode_key(store_key))
        stored = self.replica.store.cipher().encrypt(raw, aad=store_key.encode()) if secret else raw
        expect = current.entry.version if current else 0
        return PutItem(store_key, pack_value(meta, stored), expect, secret)

    async def delete(self, key: str, *, cas: int | None = None, ctx: WriteContext | None = None) -> bool:
        current = self.get(key)
        if current is None:
            return True  # Consul: deleting a missing key succeeds, with or without cas
        if cas is not None and current.entry.mod_revision != cas:
            return False
        try:
            await self.replica.delete_key(current.store_key, expect_version=current.entry.version, ctx=ctx)
        except ConflictError:
            return False
        except NotFoundError:
            return cas is None
        return True

    async def delete_tree(self, items: list[KvItem], *, ctx: WriteContext | None = None) -> bool:
        """Delete ``items`` (a listing the caller may write), each conditional on the version listed."""
        for item in items:
            try:
                await self.replica.delete_key(item.store_key, expect_version=item.entry.version, ctx=ctx)
            except (ConflictError, NotFoundError):
                continue  # changed or gone meanwhile: a concurrent writer won, as in Consul's last-writer order
        return True

    # ----- locks --------------------------------------------------------------------------------

    def item_at(self, store_key: str) -> KvItem | None:
        entry = self.replica.entry(store_key)
        return self._item(entry) if entry else None

    def arm_lock_delay(self, store_key: str, until: float) -> None:
        if until > self._lock_delays.get(store_key, 0.0):
            self._lock_delays[store_key] = until

    def lock_delayed(self, store_key: str) -> bool:
        until = self._lock_delays.get(store_key)
        if until is None:
            return False
        if until <= time.time():
            del self._lock_delays[store_key]
            return False
        return True

    # ----- replica listeners --------------------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        if not change.key.startswith(KV_PREFIX):
            return
        key = decode_key(change.key)
        if change.op == "delete":
            self._tombstones[key] = change.revision
        else:
            self._tombstones.pop(key, None)

    def _on_reload(self, revision: int, fire: bool) -> None:
        if fire:
            self._floor = revision
            self._tombstones = {k: r for k, r in self._tombstones.items() if self.replica.entry(encode_key(k)) is None}
