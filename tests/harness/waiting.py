"""The one polling loop of the suite: a process becoming healthy and a value becoming visible both wait here."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "",
    explain: Callable[[], str] | None = None,
) -> T:
    """Poll ``probe`` until it returns something truthy and return that.

    The deadline is generous because the machine is shared; the message names ``what`` was awaited, the
    last result, and whatever ``explain`` adds (a log tail), since a bare timeout tells nobody anything.
    An exception from ``probe`` ends the wait at once: a probe raises when waiting longer cannot help.
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    detail = f"\n{explain()}" if explain is not None else ""
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what or probe}; last result: {last!r}{detail}")
