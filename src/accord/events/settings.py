"""The sampling policy as live settings (``events.*``), so one ``accord config set`` changes every instance."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from accord.config.settings import Setting, SettingsGroup

__all__ = ["DEFAULT_SAMPLE_RATE", "DEFAULT_SLOW_MS", "EventsSettings"]

DEFAULT_SAMPLE_RATE = 0.05
DEFAULT_SLOW_MS = 1000.0
RouteTemplate = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^\S+$")]


class EventsSettings(SettingsGroup, category="events"):
    """Declare with ``accord.connect(groups=[EventsSettings, ...])``; ``accord.events.start(config=...)`` follows it."""

    critical_routes: list[RouteTemplate] = Setting(
        [], description="Route templates whose events are always kept (exact match on the event's route)."
    )
    slow_ms: float = Setting(DEFAULT_SLOW_MS, ge=0, description="Requests at least this slow (ms) are always kept.")
    sample_rate: float = Setting(
        DEFAULT_SAMPLE_RATE, ge=0, le=1, description="Share of the other events kept, by a salted hash of request_id."
    )
    salt: str = Setting("", max_length=200, description="Mixed into the sampling hash (not a secret).")
