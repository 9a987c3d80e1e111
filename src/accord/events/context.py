"""The request being handled, in a contextvar: ``current()`` gives handlers its event to add fields to."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RequestState", "current", "request_state"]


@dataclass(slots=True)
class RequestState:
    """One request's event, and the extra events emitted during it (decided with it at its end)."""

    event: dict[str, Any]
    owner: object
    extras: list[dict[str, Any]] = field(default_factory=list)


_state: ContextVar[RequestState | None] = ContextVar("accord_events_request", default=None)


def current() -> dict[str, Any]:
    """The wide event of the request being handled; outside a request a detached dict (its fields go nowhere)."""
    state = _state.get()
    return state.event if state is not None else {}


request_state = _state.get  # the bound method itself: emit() calls it on every event


def enter(state: RequestState) -> object:
    return _state.set(state)


def leave(token: object) -> None:
    _state.reset(token)  # type: ignore[arg-type]
