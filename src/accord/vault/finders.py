"""Fast finders and boundary checks of the built-in detectors: each yields what its regex would match,
starting from a cheap anchor (an ``@``, a ``:role/``, the dots of an address) instead of every position."""

from __future__ import annotations

from collections.abc import Iterator

from accord.vault.formats import (
    DOMAIN_RE,
    HEX_COLON_DOT,
    HEX_RUN,
    IPV4_RE,
    LOCAL_CHARS,
    LOCAL_RE,
    PRINCIPAL_RE,
    THREE_DOTS,
    V6_SHAPE,
    ipv6_plausible,
)

__all__ = [
    "digits_delimited",
    "find_emails",
    "find_ipv4",
    "find_ipv6",
    "find_principals",
    "ipv4_delimited",
    "octets_valid",
    "principal_delimited",
]


def _char(text: str, index: int) -> str:
    return text[index] if 0 <= index < len(text) else ""


def digits_delimited(text: str, start: int, end: int) -> bool:
    """Not part of a longer number: no digit (or separator and digit) right before or after."""
    before, after = _char(text, start - 1), _char(text, end)
    if before.isdigit() or after.isdigit():
        return False
    return not (before in " -" and _char(text, start - 2).isdigit()) and not (
        after in " -" and _char(text, end + 1).isdigit()
    )


def ipv4_delimited(text: str, start: int, end: int) -> bool:
    before, after = _char(text, start - 1), _char(text, end)
    return not (
        before.isdigit() or before == "." or after.isdigit() or (after == "." and _char(text, end + 1).isdigit())
    )


def principal_delimited(text: str, start: int, _end: int) -> bool:
    return not (_char(text, start - 1).isdigit() or _char(text, start - 1) == ":")


def find_principals(text: str) -> Iterator[tuple[int, int]]:
    """From each ``:role/`` (and the like): the twelve digits right before it."""
    for marker in PRINCIPAL_RE.finditer(text):
        at = marker.start()
        digits = text[max(0, at - 12) : at]
        whole = marker.group() != ":root" or not _char(text, at + 5).isalnum()
        if len(digits) == 12 and digits.isascii() and digits.isdigit() and whole:
            yield at - 12, at


def find_ipv4(text: str) -> Iterator[tuple[int, int]]:
    """From each first dot of ``.d.d.d``: up to three digits back, then the address pattern."""
    position = 0
    while (hit := THREE_DOTS.search(text, position)) is not None:
        start = hit.start()
        while start > 0 and hit.start() - start < 3 and "0" <= text[start - 1] <= "9":
            start -= 1
        address = IPV4_RE.match(text, start) if start < hit.start() else None
        if address is not None:
            yield address.span()
            position = address.end()
        else:
            position = hit.start() + 1


def octets_valid(value: str) -> bool:
    return all(int(octet) <= 255 for octet in value.split("."))


def find_emails(text: str) -> Iterator[tuple[int, int]]:
    """From each ``@``: the domain forwards, the local part backwards (what the email regex matches)."""
    at = text.find("@")
    while at != -1:
        domain = DOMAIN_RE.match(text, at + 1)
        local = LOCAL_RE.search(text, max(0, at - 64), at) if domain else None
        if domain and local and _char(text, local.start() - 1) not in LOCAL_CHARS:
            yield local.start(), domain.end()
            at = text.find("@", domain.end())
        else:
            at = text.find("@", at + 1)


def find_ipv6(text: str) -> Iterator[tuple[int, int]]:
    """From the first colon of each run of hex digits, colons and dots that has an address's shape
    (``::`` or six colons): the longest such run around it, if it is an address. Runs without that
    shape (``12:30:45``, ``key: value``) are never looked at."""
    position = 0
    while (shape := V6_SHAPE.search(text, position)) is not None:
        first = shape.start()
        while first > position and text[first - 1] in HEX_COLON_DOT:
            first -= 1
        run = HEX_RUN.match(text, _run_start(text, text.find(":", first)))
        assert run is not None
        start, end = run.span()
        candidate = text[start:end]
        if candidate[-1] in ".:" and not _ipv6_candidate(candidate):
            candidate, end = candidate[:-1], end - 1
        if _ipv6_candidate(candidate) and not (_char(text, start - 1).isalnum() or _char(text, end).isalnum()):
            yield start, end
        position = run.end()


def _run_start(text: str, index: int) -> int:
    limit = max(0, index - 45)
    while index > limit and text[index - 1] in HEX_COLON_DOT:
        index -= 1
    return index


def _ipv6_candidate(value: str) -> bool:
    # Necessary conditions, much cheaper than the parser: without "::" an address has eight groups (or
    # seven and a dotted IPv4 tail), and no group has more than four hex digits.
    colons = value.count(":")
    if colons < 2 or ("::" not in value and colons != 7 and not (colons == 6 and "." in value)):
        return False
    *groups, last = value.split(":")
    if any(len(group) > 4 for group in groups) or len(last) > (15 if "." in last else 4):
        return False
    return ipv6_plausible(value)
