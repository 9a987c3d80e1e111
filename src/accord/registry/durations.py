"""Go's duration grammar, because every Consul client writes durations the way Go's ``time`` does.

Input is ``time.ParseDuration`` (``10s``, ``1m30s``, ``0.5h``, ``"0"``; a bare number is an error)
or, inside JSON bodies, an integer of nanoseconds. Output is ``time.Duration.String()``: clients
written in Go parse durations back, and a unit-less ``"10"`` breaks their whole response.
"""

from __future__ import annotations

import re

from accord.core.errors import ValidationFailedError

__all__ = ["format_duration", "parse_duration"]

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def parse_duration(value: str | int | float, *, what: str = "duration") -> float:
    """Seconds in ``value``; an int (or float) is nanoseconds, as Go's JSON decoding of a Duration reads it."""
    if isinstance(value, bool):
        raise ValidationFailedError(f'{what}: expected a duration such as "10s", got {str(value).lower()}')
    if isinstance(value, int | float):
        return float(value) / 1e9
    text = value.strip()
    sign = 1.0
    if text[:1] in "+-" and text:
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    total, pos = 0.0, 0
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            raise ValidationFailedError(f'{what}: time: invalid duration "{value}"' if text else f"{what}: empty")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text:
        raise ValidationFailedError(f'{what}: time: invalid duration "{value}"')
    return sign * total


def format_duration(seconds: float) -> str:
    """``time.Duration.String()``: ``0s``, ``1.5s``, ``100ms``, ``1m30s``, ``1h0m0s``."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_trim(ns / 1_000)}\u00b5s"
    if ns < 1_000_000_000:
        return f"{sign}{_trim(ns / 1_000_000)}ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    secs = _trim(rest / 1e9)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


def _trim(number: float) -> str:
    text = f"{number:.9f}".rstrip("0").rstrip(".")
    return text or "0"
