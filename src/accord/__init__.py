"""accord: shared state for Python services that run as many instances.

cfg = await accord.connect(groups=[Embedding])
cfg.embedding.model                       # a memory read
await cfg.set("embedding.model", "bge")   # validated, versioned, seen by every instance
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

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
    StoreUnavailableError,
    UnknownSettingError,
    ValidationFailedError,
    ValueTooLargeError,
)

try:
    __version__ = version("accord")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"

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
