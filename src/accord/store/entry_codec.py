"""The JSON text of an Entry outside the database: in the Redis value cache and in the snapshot file.

Both hold copies a process may start from while the database is down, so both must carry the
whole entry (value as base64, revisions, who wrote it and when) and read back exactly what was written.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from accord.store.types import Entry

__all__ = ["decode_entry", "encode_entry"]


def encode_entry(entry: Entry) -> str:
    body: dict[str, Any] = {
        "key": entry.key,
        "value": base64.b64encode(entry.value).decode(),
        "version": entry.version,
        "create_revision": entry.create_revision,
        "mod_revision": entry.mod_revision,
        "secret": entry.secret,
        "updated_at": entry.updated_at.isoformat(),
        "updated_by": entry.updated_by,
    }
    return json.dumps(body, separators=(",", ":"))


def decode_entry(raw: bytes | str) -> Entry:
    """The entry ``raw`` encodes; ValueError, KeyError or TypeError when it is not one."""
    body = json.loads(raw)
    return Entry(
        key=body["key"],
        value=base64.b64decode(body["value"]),
        version=int(body["version"]),
        create_revision=int(body["create_revision"]),
        mod_revision=int(body["mod_revision"]),
        secret=bool(body["secret"]),
        updated_at=datetime.fromisoformat(body["updated_at"]),
        updated_by=body["updated_by"],
    )
