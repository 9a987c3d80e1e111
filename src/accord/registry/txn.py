"""Consul's ``/v1/txn`` for KV operations: every op checked against one view, then one atomic batch.

The ops are evaluated in order against the replica's entries plus the txn's own earlier writes;
the first failing op rolls everything back (nothing is written) and is reported with its index.
The writes then commit as one store transaction, each conditional on the version it was
evaluated against, so a concurrent change on another replica makes the batch fail as a whole;
the txn is then evaluated again on the fresher state (a few times), as if it had queued behind it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from accord.core.errors import ConflictError, ConsulApiError, NotFoundError
from accord.core.keys import MAX_VALUE_BYTES
from accord.registry.kv import KvService, SessionLookup, too_large
from accord.registry.kvkeys import KvMeta, encode_key
from accord.store.types import BatchItem, Change, DeleteItem, PutItem, WriteContext

__all__ = ["MAX_OPS", "TxnOp", "TxnOutcome", "TxnService", "parse_ops"]

MAX_OPS = 128
ATTEMPTS = 3
READ_VERBS = frozenset({"get", "get-or-empty", "get-tree", "check-index", "check-session", "check-not-exists"})
WRITE_VERBS = frozenset({"set", "cas", "lock", "unlock", "delete", "delete-tree", "delete-cas"})
Access = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class TxnOp:
    verb: str
    key: str
    value: bytes = b""
    flags: int = 0
    index: int = 0
    session: str = ""


@dataclass
class TxnOutcome:
    ok: bool
    results: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    read_only: bool = True


def _uint(value: Any, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConsulApiError(400, f"Failed to parse body: {what} must be an unsigned integer")
    return value


def parse_ops(body: Any) -> list[TxnOp]:
    """The KV ops of a txn body (fields case-insensitive); 400/413 as Consul answers bad bodies."""
    if not isinstance(body, list):
        raise ConsulApiError(400, "Failed to parse body: expected a JSON array of operations")
    if len(body) > MAX_OPS:
        raise ConsulApiError(413, f"Transaction contains too many operations ({len(body)} > {MAX_OPS})")
    ops = []
    for position, raw_op in enumerate(body):
        fields = {str(k).lower(): v for k, v in raw_op.items()} if isinstance(raw_op, dict) else {}
        kv = fields.get("kv")
        if not isinstance(kv, dict):
            raise ConsulApiError(400, f"Failed to parse body: operation {position}: accord's /v1/txn runs KV ops only")
        kv = {str(k).lower(): v for k, v in kv.items()}
        verb = kv.get("verb")
        if verb not in READ_VERBS | WRITE_VERBS:
            raise ConsulApiError(400, f"Failed to parse body: operation {position}: unknown KV verb {verb!r}")
        key = kv.get("key") or ""
        if not isinstance(key, str):
            raise ConsulApiError(400, f"Failed to parse body: operation {position}: Key must be a string")
        value = kv.get("value")
        try:
            raw = base64.b64decode(value, validate=True) if value else b""
        except (binascii.Error, TypeError, ValueError):
            raise ConsulApiError(400, f"Failed to parse body: operation {position}: Value is not base64") from None
        if len(raw) > MAX_VALUE_BYTES:
            raise too_large(len(raw))
        session = kv.get("session") or ""
        if not isinstance(session, str):
            raise ConsulApiError(400, f"Failed to parse body: operation {position}: Session must be a string")
        if key == "" and verb not in ("get-tree", "delete-tree"):
            raise ConsulApiError(400, f"Failed to parse body: operation {position}: Missing key name")
        ops.append(TxnOp(verb, key, raw, _uint(kv.get("flags"), "Flags"), _uint(kv.get("index"), "Index"), session))
    return ops


@dataclass
class _View:
    """A key as the txn sees it so far: None values are deletes made by earlier ops."""

    meta: KvMeta
    raw: bytes
    create_revision: int
    mod_revision: int
    version: int | None  # the stored version it was read at; None once the txn wrote it
    slot: int | None = None  # the batch item that wrote it (its indexes are known after the commit)


_Pending = tuple[int, str, KvMeta, int | None, bytes | None]
"""A result filled after the commit: batch slot, key, metadata, create revision, value (None: not shown)."""


class _FailedError(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class TxnService:
    def __init__(self, kv: KvService, session_exists: SessionLookup) -> None:
        self.kv = kv
        self._session_exists = session_exists

    async def run(
        self, ops: list[TxnOp], *, can_read: Access, can_write: Access, ctx: WriteContext | None = None
    ) -> TxnOutcome:
        for _attempt in range(ATTEMPTS):
            outcome = self._evaluate(ops, can_read, can_write)
            if isinstance(outcome, TxnOutcome):
                return outcome
            batch, pending, results = outcome
            if not batch:
                return TxnOutcome(True, results, read_only=all(op.verb in READ_VERBS for op in ops))
            try:
                changes = await self.kv.replica.write_batch(batch, ctx=ctx)
            except (ConflictError, NotFoundError):
                await self.kv.replica.resync()
                continue
            return TxnOutcome(True, _fill(results, pending, changes), read_only=False)
        return TxnOutcome(False, errors=[{"OpIndex": 0, "What": "concurrent changes kept invalidating the txn"}])

    def _evaluate(
        self, ops: list[TxnOp], can_read: Access, can_write: Access
    ) -> TxnOutcome | tuple[list[BatchItem], dict[int, _Pending], list[dict[str, Any]]]:
        views: dict[str, _View | None] = {}
        batch: list[BatchItem] = []
        results: list[dict[str, Any]] = []
        pending: dict[int, _Pending] = {}  # result slot -> (batch slot, key, meta, create)
        for position, op in enumerate(ops):
            try:
                self._one(op, views, batch, results, pending, can_read, can_write)
            except _FailedError as failed:
                return TxnOutcome(False, errors=[{"OpIndex": position, "What": failed.what}])
        return batch, pending, results

    def _view(self, key: str, views: dict[str, _View | None]) -> _View | None:
        if key not in views:
            item = self.kv.get(key)
            views[key] = (
                None
                if item is None
                else _View(item.meta, item.raw, item.entry.create_revision, item.entry.mod_revision, item.entry.version)
            )
        return views[key]

    def _tree(self, prefix: str, views: dict[str, _View | None]) -> list[tuple[str, _View]]:
        keys = {item.key for item in self.kv.items(prefix)} | {k for k in views if k.startswith(prefix)}
        out: list[tuple[str, _View]] = []
        for key in sorted(keys):
            view = self._view(key, views)
            if view is not None:
                out.append((key, view))
        return out

    def _one(
        self,
        op: TxnOp,
        views: dict[str, _View | None],
        batch: list[BatchItem],
        results: list[dict[str, Any]],
        pending: dict[int, _Pending],
        can_read: Access,
        can_write: Access,
    ) -> None:
        key = op.key
        tree = op.verb in ("get-tree", "delete-tree")
        if op.verb in READ_VERBS and not tree and not can_read(encode_key(key)):
            raise _FailedError("Permission denied")
        if op.verb in WRITE_VERBS and not tree and not can_write(encode_key(key)):
            raise _FailedError("Permission denied")
        if op.verb == "get-tree":
            for sub, found in self._tree(key, views):
                if can_read(encode_key(sub)):
                    results.append(_entry(sub, found, with_value=True))
            return
        if op.verb == "delete-tree":
            for sub, found in self._tree(key, views):
                if not can_write(encode_key(sub)):
                    raise _FailedError("Permission denied")
                self._delete(sub, found, views, batch)
            return
        view = self._view(key, views)
        if op.verb in READ_VERBS:
            self._read(op, view, results, pending)
        else:
            self._write(op, view, views, batch, results, pending)

    def _read(self, op: TxnOp, view: _View | None, results: list[dict[str, Any]], pending: dict[int, _Pending]) -> None:
        key = op.key
        if op.verb in ("get", "get-or-empty"):
            if view is None and op.verb == "get":
                raise _FailedError(f'key "{key}" doesn\'t exist')
            if view is not None and view.slot is not None:
                pending[len(results)] = (view.slot, key, view.meta, view.create_revision or None, view.raw)
                results.append({})
            elif view is not None:
                results.append(_entry(key, view, with_value=True))
        elif op.verb == "check-index":
            if view is None:
                raise _FailedError(f'failed to check index, key "{key}" doesn\'t exist')
            if view.mod_revision != op.index:
                raise _FailedError(
                    f'failed index check for key "{key}", current modify index {view.mod_revision} != {op.index}'
                )
            results.append(_entry(key, view, with_value=False))
        elif op.verb == "check-session":
            if view is None:
                raise _FailedError(f'failed to check session, key "{key}" doesn\'t exist')
            if view.meta.session != op.session:
                raise _FailedError(
                    f'failed session check for key "{key}", current session "{view.meta.session}" != "{op.session}"'
                )
            results.append(_entry(key, view, with_value=False))
        elif op.verb == "check-not-exists" and view is not None:
            raise _FailedError(f'failed to check for key "{key}", key exists')

    def _write(
        self,
        op: TxnOp,
        view: _View | None,
        views: dict[str, _View | None],
        batch: list[BatchItem],
        results: list[dict[str, Any]],
        pending: dict[int, _Pending],
    ) -> None:
        key = op.key
        if op.verb in ("delete", "delete-cas"):
            if op.verb == "delete-cas" and view is not None and view.mod_revision != op.index:
                raise _FailedError(f'failed to delete key "{key}", index is stale')
            if view is not None:
                self._delete(key, view, views, batch)
        else:
            meta = self._write_meta(op, view)
            slot = len(batch)
            batch.append(self._put(key, meta, op.value, view))
            pending[len(results)] = (slot, key, meta, view.create_revision if view else None, None)
            results.append({})
            views[key] = _View(meta, op.value, view.create_revision if view else 0, 0, None, slot)

    def _write_meta(self, op: TxnOp, view: _View | None) -> KvMeta:
        key = op.key
        lock_index = view.meta.lock_index if view else 0
        session = view.meta.session if view else ""
        if op.verb == "cas":
            stale = view is not None if op.index == 0 else (view is None or view.mod_revision != op.index)
            if stale:
                raise _FailedError(f'failed to set key "{key}", index is stale')
        elif op.verb == "lock":
            if not op.session or not self._session_exists(op.session):
                raise _FailedError(f'failed to lock key "{key}": invalid session "{op.session}"')
            if session and session != op.session:
                raise _FailedError(f'failed to lock key "{key}", lock is already held')
            if session != op.session:
                if self.kv.lock_delayed(encode_key(key)):
                    raise _FailedError(f'failed to lock key "{key}", lock-delay is in effect')
                lock_index += 1
            session = op.session
        elif op.verb == "unlock":
            if view is None or session != op.session:
                raise _FailedError(f'failed to unlock key "{key}", lock isn\'t held, or is held by another session')
            session = ""
        return KvMeta(op.flags, lock_index, session)

    def _put(self, key: str, meta: KvMeta, raw: bytes, view: _View | None) -> PutItem:
        item = self.kv.put_item(encode_key(key), meta, raw, None)
        expect = None if view is not None and view.version is None else (view.version if view else 0)
        return PutItem(item.key, item.value, expect, item.secret)

    def _delete(self, key: str, view: _View, views: dict[str, _View | None], batch: list[BatchItem]) -> None:
        batch.append(DeleteItem(encode_key(key), view.version))
        views[key] = None


def _entry(key: str, view: _View, *, with_value: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "LockIndex": view.meta.lock_index,
        "Key": key,
        "Flags": view.meta.flags,
        "Value": base64.b64encode(view.raw).decode("ascii") if with_value and view.raw else None,
    }
    if view.meta.session:
        out["Session"] = view.meta.session
    out["CreateIndex"] = view.create_revision
    out["ModifyIndex"] = view.mod_revision
    return {"KV": out}


def _fill(results: list[dict[str, Any]], pending: dict[int, _Pending], changes: list[Change]) -> list[dict[str, Any]]:
    for slot, (batch_slot, key, meta, create, raw) in pending.items():
        revision = changes[batch_slot].revision
        view = _View(meta, raw or b"", create or revision, revision, None)
        results[slot] = _entry(key, view, with_value=raw is not None)
    return results
