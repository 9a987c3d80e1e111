"""History read a page at a time, so a replay or a diff over a long range never loads it all at once."""

from __future__ import annotations

from collections.abc import AsyncIterator

from accord.store.types import Change, KVStore

HISTORY_PAGE = 500


async def changes_after(
    store: KVStore, revision: int, *, upto: int | None = None, page: int = HISTORY_PAGE
) -> AsyncIterator[Change]:
    """Every change after ``revision`` (up to ``upto``) in revision order; a page never splits one revision.

    A batch writes several keys at one revision: a full page holds back its last revision and the
    next page starts at it, so every row of it arrives together.
    """
    size = page
    while True:
        rows = await store.changes_since(revision, limit=size)
        if len(rows) < size:
            for change in rows:
                if upto is not None and change.revision > upto:
                    return
                yield change
            return
        last = rows[-1].revision
        whole = [change for change in rows if change.revision != last]
        if not whole:
            size *= 2  # one revision fills the page: read a larger one
            continue
        for change in whole:
            if upto is not None and change.revision > upto:
                return
            yield change
        revision, size = last - 1, page
