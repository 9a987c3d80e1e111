"""What the database says about a change a bus announced: the bus is a notification, the store the authority."""

from __future__ import annotations

import dataclasses

from accord.core.keys import SCHEMA_PREFIX
from accord.store.types import Change, KVStore

# Entries that grant or define something: applied only as the database has them, never from a bus payload.
AUTHORITY_PREFIXES = ("acl/", SCHEMA_PREFIX)


async def as_stored(store: KVStore, change: Change) -> Change | None:
    """``change`` as the database has it (value, secrecy, writer), or None if the database says otherwise."""
    entry = await store.get(change.key)
    if change.op == "delete" and not change.value_omitted:
        return change if entry is None else None
    if entry is None or entry.mod_revision != change.revision:
        return None
    return dataclasses.replace(
        change,
        op="put",
        version=entry.version,
        value=entry.value,
        secret=entry.secret,
        actor=entry.updated_by,
        at=entry.updated_at,
        value_omitted=False,
    )
