"""Whether this process can open the secrets the store holds: a lost or wrong master key must be loud.

Without this, a secret that cannot be opened is logged once and the setting silently reads as its
default, so a service runs with an empty API key and the CLI prints ``"value": ""``.
"""

from __future__ import annotations

from accord.config.live import LiveConfig
from accord.config.spec import SettingSpec
from accord.core.errors import CryptoError
from accord.core.keys import CONFIG_PREFIX

__all__ = ["require_master_key", "require_readable", "secrets_problem"]


def secrets_problem(live: LiveConfig) -> str | None:
    """The first stored secret this process cannot open, as a message naming it; None when all open."""
    for entry in live.entries(CONFIG_PREFIX):
        spec = live.registry.spec_for_key(entry.key)
        if not entry.secret or spec is None:
            continue
        try:
            live.stored_text(spec, entry.value, secret=True)
        except CryptoError as exc:
            return f"the stored secret {spec.path} cannot be opened: {exc.detail}"
    return None


def require_master_key(live: LiveConfig) -> None:
    """At start: when secrets are declared or stored, load the master key now, so a missing one fails here.

    The error (``MasterKeyError``) names ``ACCORD_MASTER_KEY``, or the key file that is missing.
    """
    declared = any(spec.secret for spec in live.registry.by_path.values())
    if declared or any(entry.secret for entry in live.entries(CONFIG_PREFIX)):
        live.cipher()


def require_readable(live: LiveConfig, spec: SettingSpec) -> None:
    """Raise the ``CryptoError`` of a stored secret that cannot be opened, instead of showing its default."""
    entry = live.entry(spec.key)
    if entry is None or not entry.secret:
        return
    try:
        live.stored_text(spec, entry.value, secret=True)
    except CryptoError as exc:
        raise type(exc)(f"the stored secret {spec.path} cannot be opened: {exc.detail}") from None
