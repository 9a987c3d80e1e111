"""Decide which values are secret and how they are shown, so every surface (CLI, API, logs) hides the same ones.

Secrecy is decided by name, not by declared type, because imported and ad-hoc keys carry no type; a false
positive only hides a harmless value, a false negative leaks one.
"""

from __future__ import annotations

import re

from accord.core.codec import encode
from accord.core.errors import CodecError

__all__ = [
    "MASK",
    "SECRETS_PREFIX",
    "SECRET_MARKERS",
    "is_secret_key",
    "is_secret_name",
    "looks_masked",
    "mask",
    "mask_value",
]

SECRET_MARKERS = ("api_key", "apikey", "password", "passwd", "secret", "token", "private_key", "credential")
SECRETS_PREFIX = "secrets/"
MASK = "****"
_REVEAL_MIN_CHARS = 16
_REVEAL_EDGE_CHARS = 4


def is_secret_name(name: str) -> bool:
    """Hyphens count as underscores so ``api-key`` and ``private-key`` are caught like ``api_key``."""
    normalized = name.lower().replace("-", "_")
    return any(marker in normalized for marker in SECRET_MARKERS)


def is_secret_key(key: str) -> bool:
    """Everything under ``secrets/`` is secret, as is any key whose last segment has a secret name."""
    return key.startswith(SECRETS_PREFIX) or is_secret_name(key.rsplit("/", 1)[-1])


def mask(value: str) -> str:
    """Short values are hidden entirely; long ones keep their ends so people can tell two secrets apart."""
    if len(value) < _REVEAL_MIN_CHARS:
        return MASK
    return f"{value[:_REVEAL_EDGE_CHARS]}{MASK}{value[-_REVEAL_EDGE_CHARS:]}"


def mask_value(value: object) -> str:
    """Mask the stored text of any value; a value that cannot be encoded is hidden entirely, never shown raw."""
    try:
        text = encode(value)
    except CodecError:
        return MASK
    return mask(text)


_MASKED = re.compile(r"(?s)\*{4}|.{4}\*{4}.{4}")


def looks_masked(value: object) -> bool:
    """Whether a value has the shape :func:`mask` gives, so an import can refuse to store a mask as a secret."""
    return isinstance(value, str) and _MASKED.fullmatch(value) is not None
