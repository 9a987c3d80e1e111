"""Where the master keys come from, how a new one is installed, and what an operator does next.

A rotation puts the new key first in the keyring and keeps the old ones as decrypt-only, so
processes that have not reloaded keep working; ``accord.keys.rotate`` then reseals what is stored.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from accord.core import environ
from accord.core.crypto import (
    MASTER_KEY_ENV,
    MASTER_KEYS_RETIRED_ENV,
    MasterKeyError,
    decode_key,
    default_key_id,
    key_file_for,
    load_keyring,
    write_key_file,
)

__all__ = [
    "KeySource",
    "encoded",
    "install_in_key_file",
    "key_source",
    "new_key_from_env",
    "next_steps",
    "write_new_key_file",
]


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


def next_steps(source: KeySource, new_key: bytes, *, staged: bool, kept: Sequence[str] = ()) -> list[str]:
    """What the operator does next. ``kept`` are key ids that must never be deleted (the vault's fingerprint key)."""
    steps = _file_steps(source, new_key) if source.key_file is not None else _env_steps(source, new_key, staged=staged)
    if kept:
        steps.append(
            f"Never delete key {', '.join(kept)}: the vault's fingerprints are made with it, so without it the "
            "vault no longer opens (keep it on a line of the key file or in the retired keys for good)."
        )
    return steps


def _file_steps(source: KeySource, new_key: bytes) -> list[str]:
    new_id = default_key_id(new_key)
    old_ids = ", ".join(default_key_id(key) for key in source.keys if key != new_key)
    return [
        f"{source.key_file} now starts with the new active key {new_id}; the old key(s) {old_ids} stay on the "
        "lines after it. Back the file up.",
        "Running processes keep working: they re-read the key file when they meet a blob of a key they lack, "
        "and whatever they still seal with an old key stays readable.",
        "Delete an old line only after every process has restarted and `accord secrets rotate-key --dry-run` "
        "counts no blob under its key id.",
    ]


def _env_steps(source: KeySource, new_key: bytes, *, staged: bool) -> list[str]:
    new_id = default_key_id(new_key)
    old_ids = ", ".join(default_key_id(key) for key in source.keys if key != new_key)
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
