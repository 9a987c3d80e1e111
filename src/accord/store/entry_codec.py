"""The JSON of an Entry outside the database: in the Redis value cache, the snapshot file and the
remote clients' snapshot (docs/remote.md).

Each holds copies a process may start from while the database is down, so each must carry the
whole entry (value as base64, revisions, who wrote it and when) and read back exactly what was written.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from accord.store.types import Entry

__all__ = ["decode_entry", "encode_entry", "entry_from_json", "entry_to_json"]


def encode_entry(entry: Entry) -> str:
    return json.dumps(entry_to_json(entry), separators=(",", ":"))


def decode_entry(raw: bytes | str) -> Entry:
    """The entry ``raw`` encodes; ValueError, KeyError or TypeError when it is not one."""
    return entry_from_json(json.loads(raw))


def entry_to_json(entry: Entry) -> dict[str, Any]:
    return {
        "key": entry.key,
        "value": base64.b64encode(entry.value).decode(),
        "version": entry.version,
        "create_revision": entry.create_revision,
        "mod_revision": entry.mod_revision,
        "secret": entry.secret,
        "updated_at": entry.updated_at.isoformat(),
        "updated_by": entry.updated_by,
    }


def entry_from_json(body: dict[str, Any]) -> Entry:
    """The entry ``body`` holds; ValueError (also for base64 that is not), KeyError or TypeError when it is not one."""
    return Entry(
        key=str(body["key"]),
        value=base64.b64decode(body["value"], validate=True),
        version=int(body["version"]),
        create_revision=int(body["create_revision"]),
        mod_revision=int(body["mod_revision"]),
        secret=bool(body["secret"]),
        updated_at=datetime.fromisoformat(body["updated_at"]),
        updated_by=str(body["updated_by"]),
    )
