"""The pipeline's counters: plain integers the collector reads, so counting costs an addition."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["STAGES", "UPPER_STAGES", "Counters", "PipelineStats"]

STAGES = ("server", "redis", "database", "spool")  # server: remote mode (the accord server relays the batch)
UPPER_STAGES = STAGES[:3]
LOSS_REASONS = frozenset({"buffer_full", "spool_full", "internal"})  # the pipeline's state lost them, not the event


@dataclass
class Counters:
    kept: Counter[str] = field(default_factory=Counter)  # by rule
    dropped: Counter[tuple[str, str]] = field(default_factory=Counter)  # (reason, class)
    delivered: Counter[str] = field(default_factory=Counter)  # by stage
    sampled_out: int = 0
    coerced: int = 0
    truncated: int = 0
    masked: int = 0
    spooled: int = 0
    replayed: int = 0
    redelivered: int = 0
    spool_corrupt: int = 0
    spool_truncated: int = 0
    last_loss: float = 0.0  # time.monotonic() of the last drop for want of room or by failure (LOSS_REASONS)

    def drop(self, reason: str, klass: str, n: int = 1) -> None:
        self.dropped[(reason, klass)] += n
        if n and reason in LOSS_REASONS:
            self.last_loss = time.monotonic()


@dataclass(frozen=True)
class PipelineStats:
    """A snapshot for ``pipeline.stats()`` and ``accord events stats``."""

    kept: dict[str, int]
    dropped: dict[str, int]
    delivered: dict[str, int]
    sampled_out: int
    coerced: int
    truncated: int
    masked: int
    spooled: int
    replayed: int
    redelivered: int
    spool_corrupt: int
    spool_truncated: int
    buffered: int
    unconfirmed: int
    spool_bytes: int
    active_stage: str
    policy_version: str
