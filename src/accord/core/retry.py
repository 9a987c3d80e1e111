"""Bounded retry with exponential backoff, for start-up and for background reconnects.

Start-up never exits the process on a dependency hiccup: it retries, logs each attempt, and only
then raises an error naming what could not be reached.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_delay, wait_random_exponential

T = TypeVar("T")
log = logging.getLogger("accord.retry")


def backoff_delays(initial: float = 0.05, maximum: float = 5.0, factor: float = 2.0) -> Iterator[float]:
    """Endless delays for reconnect loops: exponential, capped, with jitter so a fleet does not reconnect in step."""
    delay = initial
    while True:
        yield delay * (0.5 + random.random() / 2)  # jitter, not cryptography
        delay = min(delay * factor, maximum)


async def retry_for(
    fn: Callable[[], Awaitable[T]],
    *,
    what: str,
    budget_s: float,
    retry_on: tuple[type[BaseException], ...],
) -> T:
    """Call ``fn`` until it succeeds or ``budget_s`` has passed, then re-raise its last error."""

    def _log(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("could not reach %s (attempt %d): %s; retrying", what, state.attempt_number, exc)

    retrying = AsyncRetrying(
        stop=stop_after_delay(budget_s),
        wait=wait_random_exponential(multiplier=0.1, max=2.0),
        retry=retry_if_exception_type(retry_on),
        before_sleep=_log,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await fn()
    raise AssertionError("unreachable: tenacity either returns or re-raises")
