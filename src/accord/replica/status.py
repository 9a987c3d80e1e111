"""What a replica reports about itself: how current it is and which dependencies are degraded."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

DatabaseState = Literal["ok", "degraded"]


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    """A point-in-time status; the field names are those ``accord status --json`` prints."""

    revision: int
    database: DatabaseState
    read_only: bool
    bus: str
    bus_degraded: bool
    fallback_active: bool
    bus_rejected: int = 0  # bus messages dropped because their signature did not check out

    @property
    def database_ok(self) -> bool:
        """The database answers and writes are accepted."""
        return self.database == "ok" and not self.read_only

    def as_dict(self) -> dict[str, int | str | bool]:
        return asdict(self)
