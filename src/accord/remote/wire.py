"""The JSON form of changes and entries between an accord server and its remote clients.

Unlike the bus's wire form it always carries the whole value: the server has already decided what the
token may see, and a secret value arrives sealed under the token's transport key (``transport.py``).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from accord.store.types import Change, Entry

__all__ = ["change_from_json", "change_to_json", "entry_from_json", "entry_to_json", "placeholder"]


def placeholder(revision: int) -> Change:
    """A revision that touched nothing this client sees: it only moves the replica's revision on.

    Its empty key is under no prefix, so the replica applies nothing but the revision number.
    """
    return Change(revision=revision, key="", op="delete", version=0, value=None)


def change_to_json(change: Change) -> dict[str, Any]:
    body: dict[str, Any] = {
        "revision": change.revision,
        "key": change.key,
        "op": change.op,
        "version": change.version,
        "secret": change.secret,
        "actor": change.actor,
    }
    if change.value is not None:
        body["value"] = base64.b64encode(change.value).decode()
    if change.at is not None:
        body["at"] = change.at.isoformat()
    if change.action is not None:
        body["action"] = change.action
    return body


def change_from_json(body: dict[str, Any]) -> Change:
    """The change ``body`` encodes; KeyError, TypeError or ValueError when it is not one."""
    value = body.get("value")
    at = body.get("at")
    return Change(
        revision=int(body["revision"]),
        key=str(body["key"]),
        op="delete" if body["op"] == "delete" else "put",
        version=int(body["version"]),
        value=None if value is None else base64.b64decode(value, validate=True),
        secret=bool(body.get("secret")),
        actor=str(body.get("actor", "")),
        at=None if at is None else datetime.fromisoformat(at),
        action=body.get("action"),
    )


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
