"""The token grammar: ``<TYPE>_<number>`` with at least three digits, for a known set of types.

Tokens are found without a left word boundary (a detected value may sit right after a letter, so
its token does too) but never run into a following digit: the detectors drop any match that is
directly followed by one, so a token's digits always end where the number ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from accord.vault.types import check_token_type

__all__ = ["MAX_DIGITS", "TokenGrammar", "format_token", "split_token"]

MIN_DIGITS = 3
MAX_DIGITS = 19  # a BIGINT never needs more
_NUMBER = re.compile(rf"_[0-9]{{{MIN_DIGITS},{MAX_DIGITS}}}(?![0-9])")


def format_token(token_type: str, number: int) -> str:
    return f"{token_type}_{number:0{MIN_DIGITS}d}"


def split_token(token: str) -> tuple[str, int]:
    token_type, _, digits = token.rpartition("_")
    return token_type, int(digits)


@dataclass(frozen=True, slots=True)
class TokenMatch:
    start: int
    end: int
    token: str


class TokenGrammar:
    """Finds tokens of the given types in text, and says how much of a stream's tail may be an unfinished one."""

    def __init__(self, types: Iterable[str]) -> None:
        self.types = frozenset(check_token_type(name) for name in types)
        ordered = sorted(self.types, key=lambda name: (-len(name), name))
        alternatives = "|".join(re.escape(name) for name in ordered) or r"(?!)"
        self.pattern = re.compile(rf"(?:{alternatives})_[0-9]{{{MIN_DIGITS},{MAX_DIGITS}}}(?![0-9])")
        self.max_len = max((len(name) for name in self.types), default=0) + 1 + MAX_DIGITS
        self._prefixes = tuple(name + "_" for name in ordered)
        self._first_chars = frozenset(name[0] for name in self.types)
        self._by_last_char: dict[str, tuple[str, ...]] = {}
        for name in ordered:  # longest first, as the pattern prefers
            self._by_last_char[name[-1]] = (*self._by_last_char.get(name[-1], ()), name)

    def finditer(self, text: str) -> list[TokenMatch]:
        """What ``pattern`` finds, faster: from each ``_<digits>`` back to the longest type ending there."""
        if "_" not in text:
            return []
        found: list[TokenMatch] = []
        last_end = 0
        for number in _NUMBER.finditer(text):
            at = number.start()
            for name in self._by_last_char.get(text[at - 1], ()) if at else ():
                start = at - len(name)
                if start >= last_end and text.startswith(name, start):
                    found.append(TokenMatch(start, number.end(), text[start : number.end()]))
                    last_end = number.end()
                    break
        return found

    def unfinished_from(self, text: str) -> int:
        """The index where a tail that could still grow into a token starts (``len(text)`` if none).

        Everything before it can be emitted: no token can start there and end beyond the text. The
        tail is at most the longest possible token: even a complete one of ``max_len`` characters
        (longest type, ``_``, the most digits) waits, since a digit after it would make it no token.
        """
        for start in range(max(0, len(text) - self.max_len), len(text)):
            if text[start] in self._first_chars and self._could_grow(text, start):
                return start
        return len(text)

    def _could_grow(self, text: str, start: int) -> bool:
        tail_len = len(text) - start
        for prefix in self._prefixes:
            if tail_len <= len(prefix):
                if prefix.startswith(text[start:]):
                    return True
            elif text.startswith(prefix, start):
                digits = text[start + len(prefix) :]
                if len(digits) <= MAX_DIGITS and digits.isascii() and digits.isdigit():
                    return True
        return False
