"""Unmasking a stream (SSE deltas, chunked bodies) whose tokens may be split across chunks."""

from __future__ import annotations

import codecs
from collections.abc import Collection

from accord.vault.types import DEFAULT_SCOPE, InvalidInputError, check_scope, ensure_text
from accord.vault.vault import Vault

__all__ = ["StreamUnmasker"]


class StreamUnmasker:
    """Feed chunks in order; each ``feed`` returns what can be emitted now, ``flush`` the rest at the end.

    Only a tail that could still grow into a token (or be spoilt by a digit after it) is held back, so the
    hold-back is at most the longest possible token and a stream without tokens flows through unchanged.
    Bytes chunks are decoded as UTF-8 incrementally (a character split across chunks is fine; invalid
    UTF-8 is not).
    """

    def __init__(self, vault: Vault, scope: str = DEFAULT_SCOPE, *, only: Collection[str] | None = None) -> None:
        self._vault = vault
        self._scope = check_scope(scope)
        self._only = only
        self._held = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")

    @property
    def held(self) -> str:
        """The text held back right now (for tests and diagnostics)."""
        return self._held

    async def feed(self, chunk: str | bytes) -> str:
        text = self._held + self._decode(chunk, final=False)
        cut = self._vault.grammar.unfinished_from(text)
        ready, self._held = text[:cut], text[cut:]
        return await self._vault.unmask(ready, self._scope, only=self._only) if ready else ""

    async def flush(self) -> str:
        text = self._held + self._decode(b"", final=True)
        self._held = ""
        return await self._vault.unmask(text, self._scope, only=self._only) if text else ""

    def _decode(self, chunk: str | bytes, *, final: bool) -> str:
        if isinstance(chunk, bytes | bytearray):
            try:
                return self._decoder.decode(bytes(chunk), final)
            except UnicodeDecodeError as exc:
                raise InvalidInputError(f"stream is not valid UTF-8: {exc.reason}") from None
        if final:
            return self._decode(b"", final=True)
        return ensure_text(chunk, what="stream chunk")
