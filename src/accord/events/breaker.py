"""A circuit breaker per delivery stage: open on failure, one probe after a doubling backoff."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["Breaker"]


@dataclass
class Breaker:
    name: str
    base_s: float = 0.25
    cap_s: float = 5.0
    failures: int = 0
    _open_until: float = field(default=0.0, repr=False)

    @property
    def closed(self) -> bool:
        return self.failures == 0

    def allows(self) -> bool:
        """Closed, or open long enough that one probe may go (half-open)."""
        return self.failures == 0 or time.monotonic() >= self._open_until

    def state(self) -> dict[str, object]:
        """``closed``, ``open`` (backing off) or ``half-open`` (the next batch is a probe), and failures in a row."""
        if self.failures == 0:
            return {"state": "closed", "failures": 0}
        return {"state": "half-open" if self.allows() else "open", "failures": self.failures}

    def succeeded(self) -> None:
        self.failures = 0

    def failed(self) -> None:
        self.failures += 1
        self._open_until = time.monotonic() + min(self.cap_s, self.base_s * 2 ** (self.failures - 1))
