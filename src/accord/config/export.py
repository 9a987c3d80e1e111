"""The export document, ``{"revision": N, "settings": {path: value}}``, built one way for every caller.

A full backup (``sealed``) adds ``"sealed": true`` and carries each secret as its sealed bytes.

The server answers /api/config/export with it and the CLI writes it on the database; both call
:func:`export_document`, so the two write the same bytes. Every value is read before the first
byte is produced: a value that cannot be read (a secret sealed under a key this process lacks)
fails the export with a clear error and a status, never a 200 that breaks off mid-body.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator

__all__ = ["export_bytes", "export_document"]

FOOTER = b"}}\n"


async def export_document(
    revision: int, items: AsyncIterable[tuple[str, object]], *, sealed: bool = False
) -> AsyncIterator[bytes]:
    """The document in chunks (a header, one chunk per item, a footer), once every item has been read."""
    settings = [item async for item in items]
    flag = '"sealed":true,' if sealed else ""
    yield f'{{"revision":{revision},{flag}"settings":{{'.encode()
    separator = ""
    for path, value in settings:
        yield (separator + json.dumps(path) + ":" + json.dumps(value, ensure_ascii=False)).encode()
        separator = ","
    yield FOOTER


async def export_bytes(revision: int, items: AsyncIterable[tuple[str, object]], *, sealed: bool = False) -> bytes:
    """The whole document, for an HTTP answer whose status must be known before its first byte."""
    return b"".join([chunk async for chunk in export_document(revision, items, sealed=sealed)])
