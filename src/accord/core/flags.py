"""The one list of yes/no spellings, for ``ACCORD_*`` flags and for boolean settings typed as text."""

from __future__ import annotations

__all__ = ["FALSE_WORDS", "TRUE_WORDS", "flag_value"]

TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def flag_value(text: str) -> bool | None:
    """``True``/``False`` for a yes/no spelling (any case, surrounding whitespace ignored), else ``None``."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None
