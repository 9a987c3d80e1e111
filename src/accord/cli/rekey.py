"""Re-encrypting every stored secret under a new master key, in one transaction.

Secret values are AES-GCM blobs naming the key that sealed them, bound to their store key (the
AAD). A rotation puts the new key first in the keyring, keeps the old ones as decrypt-only, and
re-seals every secret blob in ``accord_kv`` and ``accord_kv_history`` without touching revisions
or versions: the values do not change, so no process has anything to re-read, and a process still
holding only the old key keeps serving what it holds.
"""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from accord.core import environ
from accord.core.crypto import (
    MASTER_KEY_ENV,
    MASTER_KEYS_RETIRED_ENV,
    Cipher,
    CryptoError,
    MasterKeyError,
    decode_key,
    default_key_id,
    key_file_for,
    load_keyring,
    write_key_file,
)
from accord.store import tables as t
from accord.store.engine import read_tx, write_tx


@dataclass(frozen=True)
class KeySource:
    """Where this process's keys come from: ACCORD_MASTER_KEY (+ retired) or the key file beside the database."""

    keys: list[bytes]
    key_file: Path | None

    @property
    def describe(self) -> str:
        return f"key file {self.key_file}" if self.key_file else MASTER_KEY_ENV


def key_source(db_url: str) -> KeySource:
    if environ.current().master_key:
        return KeySource(load_keyring(key_file=None), None)
    key_file = key_file_for(db_url)
    if key_file is None:
        raise MasterKeyError(
            f"{MASTER_KEY_ENV} is not set and {db_url.split('://', 1)[0]} databases have no key file: "
            "set the master key the servers use"
        )
    return KeySource(load_keyring(key_file=key_file), key_file)


def new_key_from_env(name: str) -> bytes:
    text = environ.variable(name)
    if not text:
        raise MasterKeyError(f"--new-key-env {name}: the environment variable {name} is not set")
    return decode_key(text, source=name)


def install_in_key_file(source: KeySource, new_key: bytes) -> None:
    """The new key first (active), every old key after it (retired): processes reading the file open both."""
    if source.key_file is None:
        raise MasterKeyError("the master key comes from the environment, there is no key file to update")
    write_key_file(source.key_file, _unique([new_key, *source.keys]))


def write_new_key_file(path: Path, key: bytes) -> None:
    """Deliver a generated key to the operator (mode 0600) before anything is encrypted with it."""
    if path.exists():
        raise MasterKeyError(f"--new-key-file {path} exists; choose a new path so no key is overwritten")
    write_key_file(path, [key])


@dataclass
class RekeyReport:
    dry_run: bool
    active_key_id: str
    before: Counter[str] = field(default_factory=Counter)  # blobs per key id before the rotation
    kv: int = 0
    history: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "active_key_id": self.active_key_id,
            "reencrypted": {"kv": self.kv, "history": self.history},
            "blobs_by_key_id_before": dict(sorted(self.before.items())),
        }


async def reencrypt(engine: AsyncEngine, cipher: Cipher, *, dry_run: bool) -> RekeyReport:
    """Re-seal every secret blob not already under ``cipher.active``: all in one transaction, or none."""
    report = RekeyReport(dry_run, cipher.active)
    transaction = read_tx(engine) if dry_run else write_tx(engine)
    async with transaction as conn:
        kv_rows = (await conn.execute(sa.select(t.kv.c.key, t.kv.c.value).where(t.kv.c.secret))).all()
        h = t.kv_history.c
        history_rows = (
            await conn.execute(sa.select(h.revision, h.key, h.value).where(h.secret, h.value.is_not(None)))
        ).all()
        for row in kv_rows:
            resealed = _reseal(cipher, row.key, bytes(row.value), report, f"current value of {row.key!r}")
            if resealed is not None and not dry_run:
                await _update(conn, t.kv, t.kv.c.key == row.key, resealed)
            report.kv += resealed is not None
        for old in history_rows:
            what = f"{old.key!r} at revision {old.revision}"
            resealed = _reseal(cipher, old.key, bytes(old.value), report, what)
            if resealed is not None and not dry_run:
                await _update(conn, t.kv_history, h.revision == old.revision, resealed)
            report.history += resealed is not None
    return report


def _reseal(cipher: Cipher, key: str, blob: bytes, report: RekeyReport, what: str) -> bytes | None:
    try:
        key_id = Cipher.key_id_of(blob)
        report.before[key_id] += 1
        if key_id == cipher.active:
            return None
        plain = cipher.decrypt(blob, aad=key.encode())
    except CryptoError as exc:
        raise CryptoError(f"cannot open the {what}, so nothing was re-encrypted: {exc.detail}") from None
    return cipher.encrypt(plain, aad=key.encode())


async def _update(conn: AsyncConnection, table: sa.Table, where: sa.ColumnElement[bool], value: bytes) -> None:
    await conn.execute(sa.update(table).where(where).values(value=value))


def next_steps(source: KeySource, new_key: bytes, *, staged: bool) -> list[str]:
    new_id = default_key_id(new_key)
    old_ids = ", ".join(default_key_id(key) for key in source.keys if key != new_key)
    if source.key_file is not None:
        return [
            f"{source.key_file} now starts with the new active key {new_id}; the old key(s) {old_ids} stay on the "
            "lines after it. Back the file up.",
            "Running processes keep working: they re-read the key file when they meet a blob of a key they lack, "
            "and whatever they still seal with an old key stays readable.",
            "Delete an old line only after every process has restarted and `accord secrets rotate-key --dry-run` "
            "counts no blob under its key id.",
        ]
    steps = [
        f"On every instance set {MASTER_KEY_ENV} to the new key ({new_id}) and add the old key(s) ({old_ids}) to "
        f"{MASTER_KEYS_RETIRED_ENV} (comma-separated), then restart the instances one by one.",
        f"Keep the old key(s) in {MASTER_KEYS_RETIRED_ENV} until every instance runs with the new key and "
        "`accord secrets rotate-key --dry-run` counts no blob under them.",
    ]
    if not staged:
        steps.insert(
            1,
            "Until an instance restarts with the new key it cannot open blobs sealed with it (values it already "
            f"holds keep working). To avoid that window next time, first roll the new key out in "
            f"{MASTER_KEYS_RETIRED_ENV}, then run rotate-key with --new-key-env.",
        )
    return steps


def encoded(key: bytes) -> str:
    return base64.b64encode(key).decode()


def _unique(keys: list[bytes]) -> list[bytes]:
    return list(dict.fromkeys(keys))
