"""The vault's shared settings, so every instance picks up a new pattern or retention at once."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, WithJsonSchema

from accord.config.settings import Setting, SettingsGroup
from accord.vault.detectors import MAX_CUSTOM_PATTERN_CHARS, custom_detectors
from accord.vault.types import MAX_TYPE_CHARS, TOKEN_TYPE_PATTERN

__all__ = ["DEFAULT_MAPPING_TTL_S", "CustomPatterns", "VaultSettings"]

DEFAULT_MAPPING_TTL_S = 30 * 24 * 3600


def _all_compile(patterns: dict[str, str]) -> dict[str, str]:
    """Refuse the whole write when one entry would be skipped, so the stored (working) patterns stay."""
    _, problems = custom_detectors(patterns, quiet=True)
    if problems:
        raise ValueError("; ".join(problems))
    return patterns


# The same rules as JSON Schema (format "regex"), so a server or CLI that only has the stored schema refuses
# the same patterns as the declaring process.
_SCHEMA = {
    "type": "object",
    "propertyNames": {"pattern": f"^{TOKEN_TYPE_PATTERN}$", "maxLength": MAX_TYPE_CHARS},
    "additionalProperties": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_CUSTOM_PATTERN_CHARS,
        "format": "regex",
    },
}
TypeName = Annotated[str, Field(pattern=f"^{TOKEN_TYPE_PATTERN}$", max_length=MAX_TYPE_CHARS)]
PatternText = Annotated[str, Field(min_length=1, max_length=MAX_CUSTOM_PATTERN_CHARS)]
CustomPatterns = Annotated[dict[TypeName, PatternText], AfterValidator(_all_compile), WithJsonSchema(_SCHEMA)]


class VaultSettings(SettingsGroup, category="vault"):
    """Declare with ``accord.connect(groups=[VaultSettings, ...])`` and pass the LiveConfig to ``Vault.connect``."""

    custom_patterns: CustomPatterns = Setting(
        {},
        description="Extra detectors as {TOKEN_TYPE: regex}; a named group 'value' limits what is masked.",
    )
    mapping_ttl_seconds: int = Setting(
        DEFAULT_MAPPING_TTL_S,
        ge=0,
        description="A mapping unused for this long expires and its token stops unmasking; 0 keeps mappings forever.",
    )
