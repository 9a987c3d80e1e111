"""Coalescing: writes of one process that arrive while one is in flight go to the database together.

The first caller runs its write at once, on its own task (a lone writer pays nothing extra).
Callers that arrive while a write is in flight queue; when it returns, one drain task sends every
queued request (up to a bound) in one call, then the next batch, until the queue is empty. Each
request gets its own outcome: its result, or its own exception (a compare-and-set miss); a failure
of the whole call (the database went away) reaches every request of that batch. Requests run in
arrival order, so their revisions follow it (docs/performance.md, "Coalescing").
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

Req = TypeVar("Req")
Res = TypeVar("Res")
Outcome: TypeAlias = Res | BaseException
MAX_BATCH_REQUESTS = 256
MAX_BATCH_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class _Queued(Generic[Req, Res]):
    request: Req
    size: int
    future: asyncio.Future[Res]


class Coalescer(Generic[Req, Res]):
    """Runs ``run(requests) -> outcomes`` (one outcome per request, in order) for batches of queued requests.

    ``size`` weighs a request (its bytes); a batch holds at most ``max_requests`` requests and, beyond
    its first, ``max_bytes`` of them.
    """

    def __init__(
        self,
        run: Callable[[Sequence[Req]], Awaitable[Sequence[Outcome[Res]]]],
        size: Callable[[Req], int],
        *,
        max_requests: int = MAX_BATCH_REQUESTS,
        max_bytes: int = MAX_BATCH_BYTES,
    ) -> None:
        self._run = run
        self._size = size
        self._max_requests = max_requests
        self._max_bytes = max_bytes
        self._queue: deque[_Queued[Req, Res]] = deque()
        self._busy = False
        self._drainer: asyncio.Task[None] | None = None
        self.batches = 0  # calls that carried more than one request (for tests and metrics)

    async def submit(self, request: Req) -> Res:
        if self._busy:
            future: asyncio.Future[Res] = asyncio.get_running_loop().create_future()
            self._queue.append(_Queued(request, self._size(request), future))
            return await future
        self._busy = True
        try:
            (outcome,) = await self._run([request])
        finally:
            self._hand_over()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def aclose(self) -> None:
        """Wait for queued requests to be written (their callers are waiting for them)."""
        if self._drainer is not None:
            await asyncio.wait({self._drainer})

    def _hand_over(self) -> None:
        if self._queue:
            self._drainer = asyncio.get_running_loop().create_task(self._drain(), name="accord-write-coalescer")
        else:
            self._busy = False

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._take()
                live = [queued for queued in batch if not queued.future.done()]  # a cancelled caller is not written
                if not live:
                    continue
                if len(live) > 1:
                    self.batches += 1
                try:
                    outcomes = await self._run([queued.request for queued in live])
                except Exception as exc:
                    for queued in live:
                        _settle(queued.future, exc)
                    continue
                for queued, outcome in zip(live, outcomes, strict=True):
                    _settle(queued.future, outcome)
        finally:
            self._busy = False
            self._drainer = None
            for queued in self._queue:  # only when the drain itself was cancelled (the loop is closing)
                queued.future.cancel()
            self._queue.clear()

    def _take(self) -> list[_Queued[Req, Res]]:
        batch = [self._queue.popleft()]
        total = batch[0].size
        while self._queue and len(batch) < self._max_requests and total + self._queue[0].size <= self._max_bytes:
            queued = self._queue.popleft()
            total += queued.size
            batch.append(queued)
        return batch


def _settle(future: asyncio.Future[Res], outcome: Outcome[Res]) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
