"""What happens to an event before it leaves the process: masking, coercion to JSON, the size cap.

It runs in the batcher, never on the request path. Secrets are found two ways: by the field's name
(the names core/masking.py treats as secret) and by the vault's built-in detectors over every string
value (AWS keys, ARNs, emails, cards...), each detected span replaced by ``[<TOKEN_TYPE>]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from accord.core.masking import is_secret_name, mask
from accord.events.stats import Counters
from accord.vault import BUILTIN_DETECTORS, DetectorSet

__all__ = ["INTERNAL_FIELDS", "Preparer"]

INTERNAL_FIELDS = frozenset(
    {"event_id", "producer", "seq", "ts", "service", "instance", "sample_rate", "sampling_rule", "policy_version"}
)
_REPR_CHARS = 200
_CUT_CHARS = 1024
_MIN_DETECT_CHARS = 6
_MAX_DEPTH = 8
_CACHED = 8192
_CACHED_CHARS = 256
_GENERATED_ID = re.compile(r"[0-9a-f]{32}\Z")  # the request ids the middleware makes: random, nothing to find
_OPTIONS = orjson.OPT_NON_STR_KEYS


@dataclass
class _Flags:
    coerced: bool = False
    masked: bool = False


class Preparer:
    """Turns event dicts into JSON bytes, counting what it had to change."""

    def __init__(self, counters: Counters, *, max_event_bytes: int = 64 * 1024) -> None:
        self._counters = counters
        self.max_event_bytes = max_event_bytes
        self._detectors = DetectorSet(BUILTIN_DETECTORS)
        # Routes, methods, user ids repeat from event to event: each distinct short string is scanned once.
        self._seen: dict[str, str | None] = {}
        self._secret_names: dict[str, bool] = {}

    def prepare(self, event: dict[str, Any]) -> bytes | None:
        """The event's JSON, masked and within the size cap; None when it had to be dropped (counted)."""
        flags = _Flags()
        clean: dict[str, Any] = {}
        seen, secret_names = self._seen, self._secret_names
        for key, value in event.items():
            name = key if key.__class__ is str else str(key)
            kind = value.__class__
            if key in INTERNAL_FIELDS or value is None or kind is int or kind is float or kind is bool:
                clean[name] = value
                continue
            # the common case, inlined: a short string under a name known not to be secret, scanned before
            if kind is str and secret_names.get(name) is False and (len(value) < _MIN_DETECT_CHARS or value in seen):
                masked = seen.get(value) if len(value) >= _MIN_DETECT_CHARS else None
                if masked is not None:
                    flags.masked = True
                clean[name] = value if masked is None else masked
                continue
            clean[name] = self._clean(name, value, flags, 0)
        data = self._dumps(clean, flags)
        if flags.coerced:
            self._counters.coerced += 1
        if flags.masked:
            self._counters.masked += 1
        if len(data) > self.max_event_bytes:
            return self._shrink(clean, data, flags)
        return data

    def _clean(self, name: str, value: Any, flags: _Flags, depth: int) -> Any:
        if value is None or isinstance(value, bool | int | float):
            return value
        secret = self._secret_names.get(name)
        if secret is None:
            secret = self._secret_names[name] = is_secret_name(name) if len(self._secret_names) < _CACHED else False
        if secret:
            flags.masked = True
            return mask(value if isinstance(value, str) else repr(value))
        if isinstance(value, str):
            return self._mask_text(value, flags)
        if depth >= _MAX_DEPTH:
            flags.coerced = True
            return repr(value)[:_REPR_CHARS]
        if isinstance(value, dict):
            return {str(k): self._clean(str(k), v, flags, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean("", v, flags, depth + 1) for v in value]
        if isinstance(value, bytes | bytearray | memoryview):
            flags.coerced = True
            return self._mask_text(bytes(value).decode("utf-8", "replace"), flags)
        flags.coerced = True
        return self._mask_text(repr(value)[:_REPR_CHARS], flags)

    def _mask_text(self, text: str, flags: _Flags) -> str:
        if len(text) < _MIN_DETECT_CHARS or _GENERATED_ID.match(text):
            return text
        cacheable = len(text) <= _CACHED_CHARS
        if cacheable and text in self._seen:
            masked = self._seen[text]
        else:
            masked = self._masked(text)
            if cacheable:
                if len(self._seen) >= _CACHED:
                    self._seen.clear()
                self._seen[text] = masked
        if masked is None:
            return text
        flags.masked = True
        return masked

    def _masked(self, text: str) -> str | None:
        """``text`` with each detected value replaced by ``[TYPE]``; None when nothing was found."""
        found = self._detectors.detect(text)
        if not found:
            return None
        parts: list[str] = []
        last = 0
        for detection in found:
            parts.append(text[last : detection.start])
            parts.append(f"[{detection.token_type}]")
            last = detection.end
        parts.append(text[last:])
        return "".join(parts)

    def _dumps(self, clean: dict[str, Any], flags: _Flags) -> bytes:
        try:
            return orjson.dumps(clean, option=_OPTIONS)
        except (TypeError, orjson.JSONEncodeError):
            flags.coerced = True
            return orjson.dumps(clean, default=lambda v: repr(v)[:_REPR_CHARS], option=_OPTIONS)

    def _shrink(self, clean: dict[str, Any], data: bytes, flags: _Flags) -> bytes | None:
        """Cut long string fields (longest first) until the event fits; None (dropped, counted) if it cannot."""
        longest = sorted(
            (k for k, v in clean.items() if isinstance(v, str) and len(v) > _CUT_CHARS),
            key=lambda k: -len(clean[k]),
        )
        for name in longest:
            value = clean[name]
            clean[name] = f"{value[:_CUT_CHARS]}…[truncated {len(value) - _CUT_CHARS} chars]"
            data = self._dumps(clean, flags)
            if len(data) <= self.max_event_bytes:
                self._counters.truncated += 1
                return data
        self._counters.drop("too_large", "priority" if clean.get("sampling_rule") != "sampled" else "normal")
        return None
