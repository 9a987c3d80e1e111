"""The bounded hand-off between the request path and the batcher: two deques and a shedding rule.

``offer`` is O(1) and takes no lock (deque appends and pops are atomic in CPython), so a request never
waits on the batcher. When the buffer is full the ``sampled`` (normal) events go first: a priority
event (error, slow, critical, forced) evicts the oldest normal one, and is itself dropped only when
no normal event is left. Every drop is counted.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any

from accord.events.stats import Counters

__all__ = ["EventBuffer"]

Event = dict[str, Any]


class EventBuffer:
    def __init__(self, capacity: int, counters: Counters) -> None:
        if capacity < 1:
            raise ValueError(f"buffer capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._normal: deque[Event] = deque()
        self._priority: deque[Event] = deque()
        self._counters = counters

    def __len__(self) -> int:
        return len(self._normal) + len(self._priority)

    def offer(self, event: Event, priority: bool) -> bool:
        """Append ``event``; False when it was the one shed."""
        if len(self._normal) + len(self._priority) >= self.capacity:
            if not priority:
                self._counters.drop("buffer_full", "normal")
                return False
            try:
                self._normal.popleft()
            except IndexError:
                self._counters.drop("buffer_full", "priority")
                return False
            self._counters.drop("buffer_full", "normal")
        (self._priority if priority else self._normal).append(event)
        return True

    def take(self, limit: int) -> list[Event]:
        """Up to ``limit`` events, oldest ``seq`` first across both deques (each is already in seq order)."""
        taken: list[Event] = []
        normal, priority = self._normal, self._priority
        while len(taken) < limit:
            if normal and priority:
                source = normal if normal[0]["seq"] < priority[0]["seq"] else priority
            elif normal:
                source = normal
            elif priority:
                source = priority
            else:
                break
            try:
                taken.append(source.popleft())
            except IndexError:  # shed by an emit on another thread meanwhile
                continue
        return taken if len(taken) < 2 else _sorted(taken)


def _sorted(events: list[Event]) -> list[Event]:
    """Already sorted unless another thread appended mid-merge; a cheap check keeps the common case O(n)."""
    if all(events[i]["seq"] < events[i + 1]["seq"] for i in range(len(events) - 1)):
        return events
    return heapq.nsmallest(len(events), events, key=lambda e: e["seq"])
