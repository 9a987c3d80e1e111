"""The vault's shared settings, so every instance picks up a new pattern or retention at once."""

from __future__ import annotations

from accord.config.settings import Setting, SettingsGroup

__all__ = ["DEFAULT_MAPPING_TTL_S", "VaultSettings"]

DEFAULT_MAPPING_TTL_S = 30 * 24 * 3600


class VaultSettings(SettingsGroup, category="vault"):
    """Declare with ``accord.connect(groups=[VaultSettings, ...])`` and pass the LiveConfig to ``Vault.connect``."""

    custom_patterns: dict[str, str] = Setting(
        {},
        description="Extra detectors as {TOKEN_TYPE: regex}; a named group 'value' limits what is masked.",
    )
    mapping_ttl_seconds: int = Setting(
        DEFAULT_MAPPING_TTL_S,
        ge=0,
        description="A mapping unused for this long expires and its token stops unmasking; 0 keeps mappings forever.",
    )
