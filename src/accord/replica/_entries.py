"""Small pieces of the replica: the entry a change leaves behind, and listener lists."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from accord.store.types import Change, Entry

L = TypeVar("L")
_EPOCH = datetime.fromtimestamp(0, UTC)


def entry_from(change: Change, old: Entry | None) -> Entry:
    """The entry a put leaves behind, given the entry it replaced (if known)."""
    created = old.create_revision if old else change.revision  # versions continue after a delete: no old, a create
    return Entry(
        key=change.key,
        value=change.value or b"",
        version=change.version,
        create_revision=created,
        mod_revision=change.revision,
        secret=change.secret,
        updated_at=change.at or (old.updated_at if old else _EPOCH),
        updated_by=change.actor,
    )


def subscribe(listeners: list[L], listener: L) -> Callable[[], None]:
    listeners.append(listener)

    def unsubscribe() -> None:
        if listener in listeners:
            listeners.remove(listener)

    return unsubscribe
