"""How a Consul KV key and its metadata live in accord's store.

Consul accepts almost any key (spaces, ``%``, ``a//b``, ``dir/``); the store's grammar accepts
``[A-Za-z0-9_.-/]`` with no empty, ``.`` or ``..`` segment, so that two spellings never name one
value. The encoding bridges them reversibly: every byte outside ``[A-Za-z0-9.-]`` (``_`` included)
becomes ``_XX``, an empty segment becomes a lone ``_`` (which no escaped segment can be), and a
segment of dots has its dots escaped. Ordinary keys (``app/db/url``) are stored as themselves under
``kv/``, so ACL rules and audit filters read naturally.

The value carries Consul's per-key metadata (``Flags``, ``LockIndex``, ``Session``) in a small
binary envelope ahead of the raw bytes: the store's revision and version columns already give
``CreateIndex``/``ModifyIndex``, and the envelope keeps the store schema free of Consul.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from accord.core.errors import InvalidKeyError, ValidationFailedError
from accord.core.keys import MAX_KEY_BYTES

__all__ = [
    "KV_PREFIX",
    "SECRET_KV_PREFIX",
    "KvMeta",
    "decode_key",
    "decode_segment",
    "encode_key",
    "encode_segment",
    "is_secret_kv_key",
    "pack_value",
    "store_prefix",
    "unpack_value",
]

KV_PREFIX = "kv/"
SECRET_KV_PREFIX = "secrets/"  # Consul keys under it are sealed at rest like secret settings
_PLAIN = re.compile(rb"[A-Za-z0-9.\-]")
_ESCAPE = re.compile(r"_([0-9A-F]{2})")
_ENVELOPE = struct.Struct(">BQQH")
_ENVELOPE_VERSION = 1


@dataclass(frozen=True, slots=True)
class KvMeta:
    """Consul's per-key metadata that the store's columns do not hold."""

    flags: int = 0
    lock_index: int = 0
    session: str = ""


def encode_segment(segment: str) -> str:
    """One path segment in the store's grammar; reversible by :func:`decode_segment`."""
    if segment == "":
        return "_"
    out = "".join(chr(byte) if _PLAIN.fullmatch(bytes([byte])) else f"_{byte:02X}" for byte in segment.encode("utf-8"))
    if out.strip(".") == "":
        out = out.replace(".", "_2E")
    return out


def decode_segment(segment: str) -> str:
    if segment == "_":
        return ""
    raw = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(segment):
        raw += segment[pos : match.start()].encode("ascii")
        raw.append(int(match.group(1), 16))
        pos = match.end()
    raw += segment[pos:].encode("ascii")
    return raw.decode("utf-8")


def encode_key(key: str) -> str:
    """The store key of Consul key ``key`` (``kv/...``), refused when it cannot be stored."""
    if key == "":
        raise InvalidKeyError("Missing key name")
    store_key = KV_PREFIX + "/".join(encode_segment(part) for part in key.split("/"))
    if len(store_key.encode("ascii")) > MAX_KEY_BYTES:
        raise InvalidKeyError(f"key too long: {len(key.encode())} bytes encode to more than {MAX_KEY_BYTES}")
    return store_key


def decode_key(store_key: str) -> str:
    """The Consul key of a ``kv/...`` store key."""
    if not store_key.startswith(KV_PREFIX):
        raise ValueError(f"not a KV store key: {store_key}")
    return "/".join(decode_segment(part) for part in store_key[len(KV_PREFIX) :].split("/"))


def store_prefix(prefix: str) -> str:
    """A store prefix that covers every key starting with the Consul string ``prefix``.

    It covers the complete segments only: a Consul prefix is a plain string prefix (``foo``
    matches ``foo1`` and ``foo/x``), so callers filter decoded keys with ``startswith(prefix)``.
    """
    head, slash, _tail = prefix.rpartition("/")
    if not slash:
        return KV_PREFIX
    return KV_PREFIX + "".join(encode_segment(part) + "/" for part in head.split("/"))


def is_secret_kv_key(key: str) -> bool:
    return key.startswith(SECRET_KV_PREFIX)


def pack_value(meta: KvMeta, raw: bytes) -> bytes:
    session = meta.session.encode("ascii")
    return _ENVELOPE.pack(_ENVELOPE_VERSION, meta.flags, meta.lock_index, len(session)) + session + raw


def unpack_value(stored: bytes) -> tuple[KvMeta, bytes]:
    if len(stored) < _ENVELOPE.size or stored[0] != _ENVELOPE_VERSION:
        raise ValidationFailedError("stored KV entry has no envelope (written by something other than /v1/kv)")
    _version, flags, lock_index, session_len = _ENVELOPE.unpack_from(stored)
    start = _ENVELOPE.size
    session = stored[start : start + session_len].decode("ascii")
    return KvMeta(flags, lock_index, session), stored[start + session_len :]
