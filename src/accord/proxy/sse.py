"""Server-sent events, parsed incrementally from an upstream's bytes and written back out.

Events keep their fields in order (``event``, ``id``, comments), so an event the proxy does not
rewrite goes out as it came in, only with normalised line endings.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

__all__ = ["SseEvent", "SseParser"]


@dataclass(frozen=True)
class SseEvent:
    """``fields`` as (name, value) in order; a comment line has the name ``""``."""

    fields: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, data: str, event: str | None = None) -> SseEvent:
        head = (("event", event),) if event is not None else ()
        return cls((*head, *(("data", line) for line in data.split("\n"))))

    @property
    def event(self) -> str | None:
        return next((value for name, value in self.fields if name == "event"), None)

    @property
    def data(self) -> str | None:
        lines = [value for name, value in self.fields if name == "data"]
        return "\n".join(lines) if lines else None

    def with_data(self, data: str) -> SseEvent:
        """The same event with its data replaced (in the place of its first data line)."""
        fields: list[tuple[str, str]] = []
        for name, value in self.fields:
            if name != "data":
                fields.append((name, value))
            elif not any(field == "data" for field, _ in fields):
                fields.extend(("data", line) for line in data.split("\n"))
        return SseEvent(tuple(fields))

    def encode(self) -> bytes:
        lines = [f":{value}" if not name else f"{name}: {value}" for name, value in self.fields]
        return ("\n".join(lines) + "\n\n").encode()


class SseParser:
    """Feed bytes as they arrive; get back every event completed so far (lines may end in CRLF, LF or CR)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._fields: list[tuple[str, str]] = []

    def feed(self, chunk: bytes) -> list[SseEvent]:
        return self._lines(self._buffer + self._decoder.decode(chunk))

    def finish(self) -> list[SseEvent]:
        """What is left when the stream ends (an event without its closing blank line is still passed on)."""
        events = self._lines(self._buffer + self._decoder.decode(b"", True) + "\n")
        if self._fields:
            events.append(SseEvent(tuple(self._fields)))
            self._fields = []
        return events

    def _lines(self, text: str) -> list[SseEvent]:
        # A CR at the very end may be the first half of a CRLF: keep it for the next chunk.
        keep_cr = text.endswith("\r")
        if keep_cr:
            text = text[:-1]
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._buffer = lines.pop() + ("\r" if keep_cr else "")
        events: list[SseEvent] = []
        for line in lines:
            if not line:
                if self._fields:
                    events.append(SseEvent(tuple(self._fields)))
                    self._fields = []
            elif line.startswith(":"):
                self._fields.append(("", line[1:]))
            else:
                name, _, value = line.partition(":")
                self._fields.append((name, value.removeprefix(" ")))
        return events
