"""What the vault keeps about a mapping, as the domain and both backends see it.

The original travels as an :class:`Item` (never stored in clear); the database and Redis hold its
encrypted blob and a keyed fingerprint, so these types carry blobs, never originals, past the sealer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

__all__ = [
    "VAULT_NAMESPACE",
    "Found",
    "Item",
    "Lookup",
    "NewRow",
    "TokenRow",
    "is_stale",
    "sequence_name",
    "touch_interval",
]

VAULT_NAMESPACE = "vault."


@dataclass(frozen=True, slots=True)
class Item:
    """One distinct original to mask: its type, its text, and its keyed fingerprint (never stored in clear)."""

    token_type: str
    original: str = field(repr=False)
    fingerprint: bytes = b""

    @property
    def field(self) -> bytes:
        return self.token_type.encode() + b":" + self.fingerprint


class NewRow(NamedTuple):
    """A mapping about to be inserted; ``blob`` is the encrypted original."""

    item: Item
    token: str
    number: int
    blob: bytes


@dataclass(frozen=True, slots=True)
class Found:
    """A live mapping: its token and the encrypted original exactly as the database holds it."""

    token: str
    blob: bytes
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TokenRow:
    token: str
    token_type: str
    fingerprint: bytes | None
    blob: bytes | None
    expired: bool
    last_used_at: datetime


@dataclass
class Lookup:
    """What a backend found for a set of tokens: encrypted originals of the live ones, and the rest.

    ``confirmed`` are the tokens confirmed live just now (which the caller may hold in memory);
    ``cacheable`` are (field, token, blob) of live database rows a cache in front may take.
    """

    blobs: dict[str, bytes] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    cacheable: list[tuple[bytes, str, bytes]] = field(default_factory=list)


def touch_interval(ttl: int) -> timedelta:
    """How stale a last-use timestamp may get: a tenth of the retention, within 1 s .. 5 min."""
    return timedelta(seconds=min(max(ttl / 10, 1.0), 300.0))


def is_stale(last_used_at: datetime | None, now: datetime, ttl: int) -> bool:
    """Whether a row's last use must be written before it is handed out (so a sweep cannot expire it)."""
    return ttl > 0 and (last_used_at is None or last_used_at < now - touch_interval(ttl))


def sequence_name(token_type: str) -> str:
    """The vault numbers each token type in its own sequence, apart from an application's sequences."""
    return VAULT_NAMESPACE + token_type
