"""The JSON form of changes and entries between an accord server and its remote clients.

Unlike the bus's wire form it always carries the whole value: the server has already decided what the
token may see, and a secret value arrives sealed under the token's transport key (``transport.py``).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from accord.store.entry_codec import entry_from_json, entry_to_json
from accord.store.types import Change

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
