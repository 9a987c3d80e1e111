"""Results, errors and name rules shared by the vault modules."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from accord.core.errors import InvalidInputError, SequenceError, VaultError

__all__ = [
    "DEFAULT_SCOPE",
    "MAX_TYPE_CHARS",
    "TOKEN_TYPE_PATTERN",
    "InvalidInputError",
    "MaskResult",
    "SequenceError",
    "VaultError",
    "VaultStats",
    "check_scope",
    "check_sequence_name",
    "check_token_type",
    "ensure_text",
]

DEFAULT_SCOPE = "default"
MAX_TYPE_CHARS = 48
_SCOPE = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
_SEQUENCE_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
# UPPER_SNAKE words; no word may be digits only, so "<TYPE>_<digits>" always splits one way.
TOKEN_TYPE_PATTERN = r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]*[A-Z][A-Z0-9]*)*"
_TOKEN_TYPE = re.compile(TOKEN_TYPE_PATTERN)


def check_scope(scope: object) -> str:
    if not isinstance(scope, str) or not _SCOPE.fullmatch(scope):
        raise InvalidInputError(f"invalid scope {json.dumps(scope)}: use 1-128 characters of [A-Za-z0-9_.:-]")
    return scope


def check_sequence_name(name: object) -> str:
    if not isinstance(name, str) or not _SEQUENCE_NAME.fullmatch(name):
        raise InvalidInputError(f"invalid sequence name {json.dumps(name)}: use 1-64 characters of [A-Za-z0-9_.:-]")
    return name


def check_token_type(name: object) -> str:
    if not isinstance(name, str) or len(name) > MAX_TYPE_CHARS or not _TOKEN_TYPE.fullmatch(name):
        raise InvalidInputError(
            f"invalid token type {json.dumps(name)}: use UPPER_SNAKE_CASE of at most {MAX_TYPE_CHARS} characters, "
            "no all-digit word (for example INTERNAL_HOST)"
        )
    return name


def ensure_text(text: object, *, what: str = "text") -> str:
    """Accept str, or bytes that are valid UTF-8; refuse anything that could not be sent on as UTF-8."""
    if isinstance(text, bytes | bytearray | memoryview):
        try:
            return bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(
                f"{what} is not valid UTF-8: byte 0x{bytes(text)[exc.start]:02x} at offset {exc.start}"
            ) from None
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} must be str (or UTF-8 bytes), not {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{what} contains a lone surrogate U+{ord(text[exc.start]):04X} at index {exc.start}; it is not valid UTF-8"
        ) from None
    return text


@dataclass(frozen=True)
class MaskResult:
    """Masked text plus the token -> original pairs it uses. The repr never shows originals."""

    text: str
    mappings: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"MaskResult(text={self.text!r}, tokens={sorted(self.mappings)!r})"


@dataclass(frozen=True)
class VaultStats:
    """Live mappings per token type, expired mappings, and unmask calls that found no live mapping.

    ``unmask_misses`` counts token-shaped strings of a known type without a live mapping (once per
    distinct token per call); ``unmask_expired`` is the part of those whose mapping had expired.
    ``mappings`` and ``expired`` can be asked per scope; the two unmask counters are vault-wide.
    """

    mappings: dict[str, int]
    expired: int
    unmask_misses: int
    unmask_expired: int

    @property
    def total(self) -> int:
        return sum(self.mappings.values())
