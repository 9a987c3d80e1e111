"""The opt-in last-known-good snapshot file, read only when the database is down at start.

It is not a configuration source: it is written from the database and read only to start
read-only when neither the database nor a complete value cache is reachable.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from accord.core.files import write_atomically
from accord.store.entry_codec import decode_entry, encode_entry
from accord.store.types import Entry

log = logging.getLogger("accord.replica")


def write(path: str, revision: int, entries: list[Entry]) -> None:
    """Replace the file atomically (write, fsync, rename) with owner-only permissions."""
    body = {"revision": revision, "entries": [encode_entry(e) for e in entries]}
    write_atomically(path, json.dumps(body))


def read(path: str) -> tuple[int, list[Entry]] | None:
    """The snapshot in the file, or None when there is none or it cannot be read (logged)."""
    try:
        body = json.loads(Path(path).read_text())
        return int(body["revision"]), [decode_entry(raw) for raw in body["entries"]]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable snapshot file %s: %s", path, exc)
        return None
