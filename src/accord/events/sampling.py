"""The keep-or-drop decision: rules first (error, slow, critical), then a salted CRC-32 of the request id.

The hash is specified exactly in docs/events.md so another language reproduces every decision:
``crc32(utf8(salt + ":" + key)) / 2**32 < sample_rate``. A policy is immutable; a live change builds a
new one and swaps the reference, so a decision never sees half of a change.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from accord.core.errors import ValidationFailedError
from accord.events.settings import DEFAULT_SAMPLE_RATE, DEFAULT_SLOW_MS

__all__ = ["RULES", "SamplingPolicy", "hash_unit"]

RULES = ("error", "slow", "critical", "sampled", "forced")
PRIORITY_RULES = frozenset({"error", "slow", "critical", "forced"})
_SCALE = 2.0**32


def hash_unit(salt: str, key: str) -> float:
    """Where ``key`` falls in [0, 1): CRC-32 (zlib, IEEE) of UTF-8 ``salt:key``, divided by 2**32."""
    return zlib.crc32(f"{salt}:{key}".encode()) / _SCALE


@dataclass(frozen=True)
class SamplingPolicy:
    critical_routes: frozenset[str] = frozenset()
    slow_ms: float = DEFAULT_SLOW_MS
    sample_rate: float = DEFAULT_SAMPLE_RATE
    salt: str = field(default="", repr=False)
    version: str = field(default="", compare=False)
    # crc32(salt + ":" + key) == crc32(key, hash_seed): the salt's part is computed once; keep when < hash_bound
    hash_seed: int = field(init=False, repr=False, compare=False)
    hash_bound: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hash_seed", zlib.crc32(f"{self.salt}:".encode()))
        object.__setattr__(self, "hash_bound", self.sample_rate * _SCALE)
        if not 0.0 <= self.sample_rate <= 1.0:
            raise ValidationFailedError(f"events.sample_rate must be within [0, 1], got {self.sample_rate!r}")
        if self.slow_ms < 0:
            raise ValidationFailedError(f"events.slow_ms must be >= 0, got {self.slow_ms!r}")
        if not self.version:
            object.__setattr__(self, "version", self._digest())

    @classmethod
    def of(
        cls,
        *,
        critical_routes: Iterable[str] = (),
        slow_ms: float = DEFAULT_SLOW_MS,
        sample_rate: float = DEFAULT_SAMPLE_RATE,
        salt: str = "",
    ) -> SamplingPolicy:
        return cls(frozenset(critical_routes), float(slow_ms), float(sample_rate), salt)

    def _digest(self) -> str:
        canonical = json.dumps(
            {
                "critical_routes": sorted(self.critical_routes),
                "salt": self.salt,
                "sample_rate": self.sample_rate,
                "slow_ms": self.slow_ms,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return f"p{zlib.crc32(canonical.encode()):08x}"

    def rule_for(self, status: Any, error_type: object, duration_ms: Any, route: object) -> str | None:
        """The tail rule that keeps an event outright, or None when only the hash can keep it.

        A status or duration that is not a number counts as absent (the comparison's TypeError).
        """
        if error_type:
            return "error"
        try:
            if status >= 500 and status.__class__ is int:
                return "error"
        except TypeError:
            pass
        try:
            if duration_ms >= self.slow_ms:
                return "slow"
        except TypeError:
            pass
        try:
            if route in self.critical_routes:
                return "critical"
        except TypeError:  # an unhashable route
            pass
        return None

    def hashed_keep(self, key: str) -> bool:
        return zlib.crc32(key.encode(), self.hash_seed) < self.hash_bound
