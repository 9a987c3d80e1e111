"""The one way accord prints a moment: ISO 8601 in UTC with ``Z`` (``2026-05-01T12:00:00Z``).

Every CLI table and ``--json`` document, every HTTP answer and every stored ``declared_at`` uses it, so a
time read anywhere compares as text with a time read anywhere else. A naive datetime is taken as UTC
(SQLite hands timestamps back naive); PostgreSQL's are converted from the session's zone.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso_utc"]


def iso_utc(moment: datetime, *, timespec: str = "auto") -> str:
    """``moment`` in UTC as ISO 8601 with a ``Z`` suffix."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"
