"""The export document, ``{"revision": N, "settings": {path: value}}``, built one way for every caller.

The server streams it from /api/config/export and the CLI writes it on the database; both call
:func:`export_document`, so the two write the same bytes. It is streamed value by value, never
built in memory, so an export of many settings costs little memory.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator

__all__ = ["export_document"]

FOOTER = b"}}\n"


async def export_document(revision: int, items: AsyncIterable[tuple[str, object]]) -> AsyncIterator[bytes]:
    """The document in chunks: a header, one chunk per ``(path, value)`` item, a footer."""
    yield f'{{"revision":{revision},"settings":{{'.encode()
    separator = ""
    async for path, value in items:
        yield (separator + json.dumps(path) + ":" + json.dumps(value, ensure_ascii=False)).encode()
        separator = ","
    yield FOOTER
