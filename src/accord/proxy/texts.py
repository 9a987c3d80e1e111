"""What the proxy masks and unmasks: the texts of one request, masked in one vault call, and a local unmasker.

The answer is unmasked from the request's own mappings (what ``vault.unmask(..., only=mappings)``
would do), so a request costs one vault call however many deltas its answer streams.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from accord.core.errors import BadRequestError
from accord.vault import TokenGrammar, Vault
from accord.vault.batch import mask_many

__all__ = [
    "BadRequestError",
    "Parsed",
    "StreamText",
    "Texts",
    "Unmasker",
    "dump_body",
    "dump_json",
    "load_json",
    "mask_texts",
    "parse_body",
    "unmask_body",
]

JSON_TEXT_KEYS = frozenset({"arguments", "partial_json"})  # strings that are JSON text themselves
SKIP_KEYS = frozenset({"thinking", "signature"})  # signed by the provider: sent back as received

Container = dict[str, Any] | list[Any]


class Texts:
    """Places in a request body that hold text the model reads; masked together, then written back in place."""

    def __init__(self) -> None:
        self._slots: list[tuple[Any, Any]] = []
        self._json: list[tuple[Any, Any, list[Any], int, int]] = []

    def add(self, container: Container, key: Any) -> None:
        self._slots.append((container, key))

    def add_leaves(self, container: Container, key: Any) -> None:
        """Every string inside ``container[key]`` (a JSON value), keys excepted."""
        value = container[key]
        if isinstance(value, str):
            self._slots.append((container, key))
        elif isinstance(value, dict):
            for name in value:
                self.add_leaves(value, name)
        elif isinstance(value, list):
            for index in range(len(value)):
                self.add_leaves(value, index)

    def add_json_text(self, container: Container, key: Any) -> None:
        """A string holding JSON (tool-call arguments): its string leaves are masked, not its raw text.

        Masking the raw text would store escaped originals (``\\n`` in a PEM key) that unmask wrong.
        """
        try:
            holder = [json.loads(container[key])]
        except ValueError:
            self._slots.append((container, key))
            return
        first = len(self._slots)
        self.add_leaves(holder, 0)
        self._json.append((container, key, holder, first, len(self._slots)))

    def values(self) -> list[str]:
        return [container[key] for container, key in self._slots]

    def apply(self, masked: list[str]) -> bool:
        """Write masked texts back; returns whether anything changed."""
        changed = [False] * len(self._slots)
        for index, ((container, key), text) in enumerate(zip(self._slots, masked, strict=True)):
            if container[key] != text:
                container[key] = text
                changed[index] = True
        for container, key, holder, first, end in self._json:
            if any(changed[first:end]):
                container[key] = json.dumps(holder[0], ensure_ascii=False)
        return any(changed)


async def mask_texts(
    vault: Vault, texts: list[str], scope: str, *, max_new: int | None = None
) -> tuple[list[str], dict[str, str]]:
    """Mask all ``texts`` in one vault call (one atomic get-or-create); returns masked texts and mappings.
    More than ``max_new`` distinct values raises ``RequestTooLargeError`` with nothing stored."""
    return await mask_many(vault, texts, scope, max_new=max_new)


class Unmasker:
    """Puts the request's originals back: only its own tokens, as ``vault.unmask(only=...)`` would."""

    def __init__(self, grammar: TokenGrammar, mappings: Mapping[str, str]) -> None:
        self.grammar = grammar
        self.mappings = dict(mappings)
        self._escaped: dict[str, str] | None = None

    @property
    def active(self) -> bool:
        return bool(self.mappings)

    def text(self, text: str) -> str:
        return self._replace(text, self.mappings)

    def json_text(self, text: str) -> str:
        """For tokens inside JSON string literals (tool-call arguments): originals are JSON-escaped."""
        if self._escaped is None:
            self._escaped = {
                token: json.dumps(value, ensure_ascii=False)[1:-1] for token, value in self.mappings.items()
            }
        return self._replace(text, self._escaped)

    def in_place(self, container: Container) -> bool:
        """Unmask every string inside a parsed JSON body; returns whether anything changed."""
        changed = False
        keys = container.keys() if isinstance(container, dict) else range(len(container))
        for key in keys:
            value = container[key]  # type: ignore[index]
            if isinstance(value, str):
                if key in SKIP_KEYS:
                    continue
                new = self.json_text(value) if key in JSON_TEXT_KEYS else self.text(value)
                if new != value:
                    container[key] = new  # type: ignore[index]
                    changed = True
            elif isinstance(value, dict | list) and key not in SKIP_KEYS:
                changed = self.in_place(value) or changed
        return changed

    def _replace(self, text: str, table: Mapping[str, str]) -> str:
        if not table or "_" not in text:
            return text
        pieces: list[str] = []
        position = 0
        for match in self.grammar.finditer(text):
            original = table.get(match.token)
            if original is not None:
                pieces += [text[position : match.start], original]
                position = match.end
        if not pieces:
            return text
        pieces.append(text[position:])
        return "".join(pieces)


class StreamText:
    """One streamed text (a choice's content, a tool call's arguments): a token split across deltas comes back
    whole. Holds back only a tail that could still grow into a token, like ``StreamUnmasker``."""

    def __init__(self, unmasker: Unmasker, *, json_text: bool = False) -> None:
        self._unmasker = unmasker
        self._json = json_text
        self._held = ""

    def feed(self, chunk: str) -> str:
        if not self._unmasker.active:
            return chunk
        text = self._held + chunk
        cut = self._unmasker.grammar.unfinished_from(text)
        ready, self._held = text[:cut], text[cut:]
        return self._emit(ready)

    def flush(self) -> str:
        text, self._held = self._held, ""
        return self._emit(text)

    def _emit(self, text: str) -> str:
        if not text:
            return text
        return self._unmasker.json_text(text) if self._json else self._unmasker.text(text)


def parse_body(raw: bytes) -> Parsed:
    """The request body, a JSON object; its ``value`` is a dict."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError(
            f"the body is not valid UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}", code="invalid_utf8"
        ) from None
    try:
        parsed = load_json(text)
    except ValueError as exc:
        raise BadRequestError(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    except RecursionError:
        raise BadRequestError("the body is nested too deeply", code="invalid_json") from None
    if not isinstance(parsed.value, dict):
        raise BadRequestError(f"the body must be a JSON object, not {type(parsed.value).__name__}")
    if "stream" in parsed.value and not isinstance(parsed.value["stream"], bool):
        raise BadRequestError("'stream' must be true or false")
    return parsed


@dataclass(slots=True)
class Parsed:
    """A JSON value and whether orjson can write it back: not if it holds NaN or ±Infinity (orjson writes null)."""

    value: Any
    finite: bool = True

    def constant(self, name: str) -> float:
        self.finite = False
        return float(name)  # NaN, Infinity, -Infinity: float() reads them as json does

    def real(self, text: str) -> float:
        number = float(text)
        if math.isinf(number):  # 1e400
            self.finite = False
        return number


def load_json(text: str | bytes) -> Parsed:
    """``json.loads`` (its grammar and its error messages), noting what ``dump_body`` needs to know."""
    parsed = Parsed(None)
    parsed.value = json.loads(text, parse_constant=parsed.constant, parse_float=parsed.real)
    return parsed


def dump_json(value: object) -> str:
    """Compact JSON text as the providers send it (no spaces, non-ASCII kept)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def dump_body(parsed: Parsed) -> bytes:
    """Compact JSON bytes. orjson when it can (a 64 KiB prompt: 5 µs instead of 180 µs; numbers in their
    shortest form, e.g. 1e-05 as 0.00001); json for what orjson refuses or would change: integers beyond
    64 bits, lone surrogates, NaN and ±Infinity."""
    value = parsed.value
    if parsed.finite:
        try:
            return orjson.dumps(value)
        except TypeError:
            pass
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # a lone surrogate in a field nobody masks: escape it as it came
        return json.dumps(value, separators=(",", ":")).encode()


def unmask_body(content: bytes, content_type: str, unmasker: Unmasker) -> bytes:
    """An answer (or error) read whole: unmasked if it is JSON or text, byte for byte as sent otherwise."""
    if not unmasker.active or not content:
        return content
    if "json" in content_type:
        try:
            parsed = load_json(content)
        except (ValueError, RecursionError):
            return content
        changed = isinstance(parsed.value, dict | list) and unmasker.in_place(parsed.value)
        return dump_body(parsed) if changed else content
    if content_type.startswith("text/"):
        try:
            return unmasker.text(content.decode("utf-8")).encode()
        except UnicodeDecodeError:
            return content
    return content
