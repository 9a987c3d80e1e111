"""The key grammar and size limits, checked in one place so the store, server and CLI agree.

A key is 1 to 512 bytes of ``[A-Za-z0-9_.-/]``: slash-separated segments, none empty, none ``.`` or
``..``. The grammar keeps keys safe to put in URLs, file names and shell commands unquoted, and rules
out the aliasing (``a//b`` vs ``a/b``, ``a/./b``) that would let two spellings name one value.

Settings declared in code use dotted paths ``<category>.<name>``; each maps to exactly one key
``config/<category>/<name>``.
"""

from __future__ import annotations

import json
import re

from accord.core.errors import InvalidKeyError, ValidationFailedError, ValueTooLargeError

__all__ = [
    "CONFIG_PREFIX",
    "MAX_JSON_DEPTH",
    "MAX_KEY_BYTES",
    "MAX_VALUE_BYTES",
    "PROFILE_PREFIX",
    "SCHEMA_PREFIX",
    "check_depth",
    "check_profile",
    "check_value_size",
    "key_to_path",
    "path_to_key",
    "profile_key",
    "validate_key",
    "validate_prefix",
]

MAX_KEY_BYTES = 512
MAX_VALUE_BYTES = 512 * 1024
ENVELOPE_HEADROOM = 1024  # Consul KV entries (kv/...) carry their metadata envelope and seal beside a full value
MAX_JSON_DEPTH = 32
CONFIG_PREFIX = "config/"
PROFILE_PREFIX = "env/"  # env/<profile>/config/...: an environment profile's layer over the base keys
SCHEMA_PREFIX = "schema/"  # one entry per declared setting (dotted path): its stored schema, so declarations propagate

_FORBIDDEN_CHAR = re.compile(r"[^A-Za-z0-9_.\-/]")
_CATEGORY = re.compile(r"[a-z_][a-z0-9_]*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PREVIEW_CHARS = 80


def validate_key(key: str) -> str:
    """Refuse a malformed key before it reaches storage, naming the rule it breaks."""
    problem = _empty_problem(key) or _grammar_problem(key, prefix=False)
    if problem:
        raise InvalidKeyError(f"invalid key {_preview(key)}: {problem}")
    return key


def validate_prefix(prefix: str) -> str:
    """Check a listing/watch prefix: a string prefix of keys, so it may end in ``/`` or be empty (all keys).

    Only complete segments are checked for ``.``/``..``, because ``config/.`` legitimately
    prefixes ``config/.hidden``.
    """
    problem = _grammar_problem(prefix, prefix=True)
    if problem:
        raise InvalidKeyError(f"invalid key prefix {_preview(prefix)}: {problem}")
    return prefix


def _empty_problem(key: object) -> str | None:
    return "must not be empty" if key == "" else None


def _grammar_problem(text: object, *, prefix: bool) -> str | None:
    """The first rule ``text`` breaks, or None; rules shared by keys and prefixes live here."""
    if not isinstance(text, str):
        return f"must be a string, not {type(text).__qualname__}"
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_KEY_BYTES:
        return f"is {size} bytes long; the limit is {MAX_KEY_BYTES} bytes"
    bad = _FORBIDDEN_CHAR.search(text)
    if bad:
        shown = json.dumps(bad.group(), ensure_ascii=False)
        return f"contains {shown} at position {bad.start()}; only A-Z a-z 0-9 _ . - / are allowed"
    if text.startswith("/"):
        return "must not start with '/'"
    if "//" in text:
        return "must not contain an empty segment ('//')"
    if not prefix and text.endswith("/"):
        return "must not end with '/' (only a prefix may)"
    return _dot_segment_problem(text, prefix=prefix)


def _dot_segment_problem(text: str, *, prefix: bool) -> str | None:
    segments = text.split("/")
    if prefix:
        segments = segments[:-1]  # the last piece of a prefix is a partial segment
    for segment in segments:
        if segment in {".", ".."}:
            return f"must not contain a {json.dumps(segment)} segment"
    return None


def check_value_size(key: str, data: bytes | str) -> None:
    """Refuse oversized values up front; the limit applies to the UTF-8 bytes that are stored."""
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    limit = MAX_VALUE_BYTES + (ENVELOPE_HEADROOM if key.startswith("kv/") else 0)
    if size > limit:
        raise ValueTooLargeError(f"value for key {_preview(key)} is {size} bytes; the limit is {MAX_VALUE_BYTES} bytes")


def check_depth(what: str, value: object, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse values nested deeper than ``limit`` lists/dicts: no setting needs it, and deep input is an attack."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list | tuple):
            if depth > limit:
                raise ValidationFailedError(f"{what} is nested deeper than {limit} levels")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)


def path_to_key(path: str) -> str:
    """Map a setting path ``<category>.<name>`` to its key ``config/<category>/<name>``.

    Exactly one dot: nested categories would make ``a.b.c`` ambiguous between two keys.
    """
    problem = _path_problem(path)
    if problem:
        raise InvalidKeyError(f"invalid setting path {_preview(path)}: {problem}")
    category, _, name = path.partition(".")
    key = f"{CONFIG_PREFIX}{category}/{name}"
    if len(key) > MAX_KEY_BYTES:
        raise InvalidKeyError(
            f"invalid setting path {_preview(path)}: its key is {len(key)} bytes; the limit is {MAX_KEY_BYTES}"
        )
    return key


def _path_problem(path: object) -> str | None:
    if not isinstance(path, str):
        return f"must be a string, not {type(path).__qualname__}"
    category, dot, name = path.partition(".")
    if not dot or "." in name:
        return "must be '<category>.<name>' with exactly one dot"
    if not _CATEGORY.fullmatch(category):
        return f"category {json.dumps(category)} must match [a-z_][a-z0-9_]*"
    if not _NAME.fullmatch(name):
        return f"name {json.dumps(name)} must match [A-Za-z_][A-Za-z0-9_]*"
    return None


def key_to_path(key: str) -> str | None:
    """The setting path a key belongs to, or None for keys that are not ``config/<category>/<name>``."""
    if not key.startswith(CONFIG_PREFIX) or len(key) > MAX_KEY_BYTES:
        return None
    category, slash, name = key.removeprefix(CONFIG_PREFIX).partition("/")
    if not slash or not _CATEGORY.fullmatch(category) or not _NAME.fullmatch(name):
        return None
    return f"{category}.{name}"


def _preview(text: object) -> str:
    shown = repr(text)
    if len(shown) <= _PREVIEW_CHARS:
        return shown
    return f"{shown[:_PREVIEW_CHARS]}... ({len(shown)} chars)"


def profile_key(profile: str | None, key: str) -> str:
    """The store key of ``key`` in environment profile ``profile`` (``env/<profile>/<key>``), or ``key``."""
    return key if profile is None else f"{PROFILE_PREFIX}{profile}/{key}"


def check_profile(profile: str) -> str:
    """An environment profile name is one key segment: letters, digits, ``_ . -``."""
    if not profile or profile in {".", ".."} or not all(c.isascii() and (c.isalnum() or c in "_.-") for c in profile):
        raise InvalidKeyError(f"{profile!r} is not an environment profile name: use letters, digits, _ . -")
    return profile
