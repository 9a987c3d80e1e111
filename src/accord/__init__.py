"""accord: shared state for Python services that run as many instances.

cfg = await accord.connect(groups=[Embedding])
cfg.embedding.model                       # a memory read
await cfg.set("embedding.model", "bge")   # validated, versioned, seen by every instance

Names are imported on first use (module ``__getattr__``, as pydantic does), so ``import accord``
and ``accord --version`` load neither SQLAlchemy nor Redis.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from accord.config.connect import connect
    from accord.config.live import LiveConfig
    from accord.config.registry import discover
    from accord.config.settings import Setting, SettingsGroup
    from accord.config.sync import SyncConfig, connect_sync
    from accord.config.values import HistoryItem, SettingChange, SettingMeta
    from accord.core.errors import (
        AccordError,
        CodecError,
        CompactedError,
        ConfigFileError,
        ConflictError,
        InvalidKeyError,
        NotFoundError,
        ReadOnlyError,
        SchemaConflictError,
        StoreUnavailableError,
        UnknownSettingError,
        ValidationFailedError,
        ValueTooLargeError,
    )

    __version__: str

_ERRORS = "accord.core.errors"
# public name -> the module that defines it
_DYNAMIC_IMPORTS: dict[str, str] = {
    "connect": "accord.config.connect",
    "LiveConfig": "accord.config.live",
    "discover": "accord.config.registry",
    "Setting": "accord.config.settings",
    "SettingsGroup": "accord.config.settings",
    "SyncConfig": "accord.config.sync",
    "connect_sync": "accord.config.sync",
    "HistoryItem": "accord.config.values",
    "SettingChange": "accord.config.values",
    "SettingMeta": "accord.config.values",
    "AccordError": _ERRORS,
    "CodecError": _ERRORS,
    "CompactedError": _ERRORS,
    "ConfigFileError": _ERRORS,
    "ConflictError": _ERRORS,
    "InvalidKeyError": _ERRORS,
    "NotFoundError": _ERRORS,
    "ReadOnlyError": _ERRORS,
    "SchemaConflictError": _ERRORS,
    "StoreUnavailableError": _ERRORS,
    "UnknownSettingError": _ERRORS,
    "ValidationFailedError": _ERRORS,
    "ValueTooLargeError": _ERRORS,
}

__all__ = [
    "AccordError",
    "CodecError",
    "CompactedError",
    "ConfigFileError",
    "ConflictError",
    "HistoryItem",
    "InvalidKeyError",
    "LiveConfig",
    "NotFoundError",
    "ReadOnlyError",
    "SchemaConflictError",
    "Setting",
    "SettingChange",
    "SettingMeta",
    "SettingsGroup",
    "StoreUnavailableError",
    "SyncConfig",
    "UnknownSettingError",
    "ValidationFailedError",
    "ValueTooLargeError",
    "__version__",
    "connect",
    "connect_sync",
    "discover",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _DYNAMIC_IMPORTS:
        value = getattr(import_module(_DYNAMIC_IMPORTS[name]), name)
    else:
        raise AttributeError(f"module 'accord' has no attribute {name!r}")
    globals()[name] = value  # the next lookup is a plain attribute read
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def _version() -> str:
    from accord.core.version import package_version

    return package_version()
