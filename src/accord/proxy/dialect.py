"""What the proxy needs to know about one provider's API, behind one Protocol per role."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from accord.proxy.sse import SseEvent
from accord.proxy.texts import Texts, Unmasker

__all__ = ["Dialect", "StreamRewriter", "WireFormat"]


class StreamRewriter(Protocol):
    """Unmasks one streamed answer event by event; ``finish`` gives what is still held back at its end."""

    def rewrite(self, event: SseEvent) -> list[SseEvent]: ...

    def finish(self) -> list[SseEvent]: ...


class Dialect(Protocol):
    """One provider's wire format: what its requests hold for the model, its error shape, its stream events."""

    @property
    def name(self) -> str: ...

    def collect(self, body: dict[str, Any], texts: Texts) -> None:
        """Add every text of the request the model reads to ``texts``; BadRequestError if the body is malformed."""
        ...

    def stream(self, unmasker: Unmasker) -> StreamRewriter: ...

    def error_body(self, status: int, message: str, code: str) -> dict[str, Any]: ...

    def error_event(self, message: str, code: str) -> SseEvent: ...


@dataclass(frozen=True)
class WireFormat:
    """A Dialect made of one provider module's functions (each provider module ends with one of these)."""

    name: str
    collect: Callable[[dict[str, Any], Texts], None]
    stream: Callable[[Unmasker], StreamRewriter]
    error_body: Callable[[int, str, str], dict[str, Any]]
    error_event: Callable[[str, str], SseEvent]
