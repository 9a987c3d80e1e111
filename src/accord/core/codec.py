"""Canonical text form of setting values, and the one place that turns text back into typed values.

accord stores every value as TEXT and decodes it by the declared Python type of its setting. In the system
that accord replaces, strings were stored JSON-quoted and every layer that touched them quoted them again,
until a value read ``"\\"\\\\\\"foo\\\\\\"\\""``. The rule here ends that: a value whose JSON form is a string is
stored *raw*, with no quotes, and everything else is stored as compact JSON. Text is never quoted twice
because text is never quoted at all.

Which function is for what:

* :func:`encode` -- typed value to stored text (writes).
* :func:`decode` -- stored text to typed value (reads); strict, because stored text is canonical.
* :func:`validate` -- check a Python value against the declared type before it is written (SDK, API).
* :func:`parse_input` -- a string a person typed (CLI, forms) to a typed value; lenient.
* :func:`unescape_legacy` / :func:`coerce_legacy` -- only for importing old config files whose values
  were escaped several times over. Never used on accord's own stored text.

Round-trip law: for every value ``v`` valid for ``tp``, ``decode(encode(v), tp) == v``. It cannot hold
where the declared type admits both a string and a non-string reading of the same text; then the
non-string reading wins. Examples: ``int | str`` decodes ``"5"`` as ``5``; ``Optional[str]`` decodes
``"null"`` as ``None``. Declare such settings without the union when the distinction matters.
"""

from __future__ import annotations

import functools
import json
from typing import Any, get_args

from pydantic import BaseModel, Secret, SecretBytes, SecretStr, TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from accord.core.errors import CodecError, ValidationFailedError

__all__ = [
    "coerce_legacy",
    "decode",
    "encode",
    "is_non_string_json",
    "parse_input",
    "to_data",
    "unescape_legacy",
    "validate",
]

_PREVIEW_CHARS = 60
_JSON_WHITESPACE = " \t\n\r"
_LEGACY_MAX_LAYERS = 5


# ---------------------------------------------------------------------------------------------------------
# encoding


def encode(value: object) -> str:
    """Give the one canonical text of ``value`` so equal values are stored as equal text.

    Strings (and anything whose JSON form is a string: str enums, datetimes, UUIDs, paths) are returned
    raw; numbers, booleans, ``None``, containers and pydantic models become compact JSON in insertion
    order. Non-finite floats are refused because JSON cannot carry them and the store must not hold
    text that no reader can decode.
    """
    data = _jsonable(value)
    text = data if isinstance(data, str) else _dump_json(data, value)
    _require_utf8(text, value)
    return text


def to_data(value: object) -> object:
    """``value`` as JSON-able data (secrets revealed), as :func:`encode` sees it before writing text."""
    return _jsonable(value)


def _jsonable(value: object) -> object:
    """Lower to JSON-able data; secrets are revealed first because pydantic's JSON mode masks them."""
    try:
        return to_jsonable_python(_reveal_secrets(value), by_alias=True)
    except PydanticSerializationError as exc:
        raise CodecError(f"cannot encode a value of type {type(value).__qualname__}: {exc}") from exc


def _reveal_secrets(value: object) -> object:
    """Swap secret wrappers for their contents; storing '**********' would lose the secret for good."""
    if isinstance(value, Secret | SecretStr | SecretBytes):
        return _reveal_secrets(value.get_secret_value())
    if isinstance(value, BaseModel):
        return _reveal_secrets(value.model_dump(mode="python", by_alias=True))
    if isinstance(value, dict):
        return {key: _reveal_secrets(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_reveal_secrets(item) for item in value]
    return value


def _dump_json(data: object, original: object) -> str:
    try:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError) as exc:
        raise CodecError(f"cannot encode {_preview(original)}: {exc}") from exc


def _require_utf8(text: str, original: object) -> None:
    """Lone surrogates pass through Python strings but no database column accepts them."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CodecError(f"cannot encode {_preview(original)}: not valid Unicode ({exc.reason})") from exc


# ---------------------------------------------------------------------------------------------------------
# decoding, validation and user input


def decode(text: str, tp: object) -> object:
    """Read stored text as the declared type; strict, so drift from the canonical form is caught.

    Strict means ``"1"`` is not a bool and ``"5.0"`` is not an int, exactly the texts :func:`encode`
    never produces for those types.
    """
    if tp is str:
        return text
    try:
        return _from_text(text, tp, strict=True)
    except ValidationError as exc:
        raise CodecError(f"cannot decode {_preview(text)} as {_type_name(tp)}: {_reason(exc)}") from exc


def parse_input(raw: str, tp: object) -> object:
    """Turn what a person typed into a typed value, leniently (``"yes"`` is a bool, ``" 5"`` an int).

    The same text rules as :func:`decode`, so ``accord set`` takes exactly what ``accord get`` prints,
    and a ``str`` setting takes the input verbatim: no quoting is ever needed or stripped.
    """
    if tp is str:
        return raw
    try:
        return _from_text(raw, tp, strict=False)
    except ValidationError as exc:
        raise ValidationFailedError(f"{_preview(raw)} is not a valid {_type_name(tp)}: {_reason(exc)}") from exc


def validate(value: object, tp: object, *, strict: bool = False) -> object:
    """Check a Python value against the declared type before it is written; returns the coerced value."""
    try:
        return _adapter(tp).validate_python(value, strict=strict)
    except ValidationError as exc:
        raise ValidationFailedError(f"{_preview(value)} is not a valid {_type_name(tp)}: {_reason(exc)}") from exc


def _from_text(text: str, tp: object, *, strict: bool) -> object:
    """Read non-string JSON as JSON, and everything else as one string, mirroring :func:`encode`.

    A JSON *string* literal (``"\\"abc\\""``) is read as the text with its quotes, never unquoted:
    canonical text has no quoted strings, so unquoting here would be the escaping bug coming back.
    """
    adapter = _adapter(tp)
    if not is_non_string_json(text):
        return adapter.validate_json(json.dumps(text), strict=strict)
    try:
        return adapter.validate_json(text, strict=strict)
    except ValidationError as json_error:
        try:
            return adapter.validate_json(json.dumps(text), strict=strict)
        except ValidationError:
            raise json_error from None


def is_non_string_json(text: str) -> bool:
    """Surrounding whitespace and NaN/Infinity are not canonical, so such text counts as plain text."""
    if not text or text.strip(_JSON_WHITESPACE) != text:
        return False
    try:
        parsed = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return False
    return not isinstance(parsed, str)


def _reject_constant(name: str) -> object:
    raise ValueError(f"non-finite number {name}")


def _adapter(tp: Any) -> TypeAdapter[Any]:
    """Building an adapter costs far more than using one; annotations that cannot be hashed skip the cache."""
    try:
        hash(tp)
    except TypeError:
        return TypeAdapter(tp)
    return _cached_adapter(tp)


@functools.lru_cache(maxsize=1024)
def _cached_adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


# ---------------------------------------------------------------------------------------------------------
# legacy import


def unescape_legacy(value: object, max_layers: int = _LEGACY_MAX_LAYERS) -> object:
    """Peel the JSON quoting that the old system piled on, for importing its config files only.

    Peeling stops at text that is not JSON, at any non-string result (returned as is, so ``"[1, 2]"``
    becomes a list) or after ``max_layers`` layers. Values inside a peeled container are left alone:
    there, escaping cannot be told apart from data.
    """
    return _legacy_layers(value, max_layers)[-1]


def coerce_legacy(raw: object, tp: object, *, max_layers: int = _LEGACY_MAX_LAYERS) -> object:
    """Un-escape a legacy value and keep the most-peeled layer the declared type accepts.

    Deepest first, so ``json.dumps(json.dumps("abc"))`` gives ``"abc"`` and ``"[1, 2]"`` gives a list; but
    when the deepest layer does not fit, a shallower one may, so ``"123"`` stays ``"123"`` for a ``str``
    setting and ``"true"`` stays text for a ``str`` but becomes ``True`` for a ``bool``. Validation is lax
    because legacy files are messy. Ambiguity that cannot be resolved: a ``str`` value that is itself a
    JSON string literal (``'"abc"'``) is indistinguishable from an escaped ``abc`` and comes out as ``abc``.
    """
    adapter = _adapter(tp)
    failures: list[ValidationError] = []
    for candidate in reversed(_legacy_layers(raw, max_layers)):
        try:
            return adapter.validate_python(candidate)
        except ValidationError as exc:
            failures.append(exc)
    detail = f"legacy value {_preview(raw)} is not a valid {_type_name(tp)}: {_reason(failures[0])}"
    raise ValidationFailedError(detail) from failures[0]


def _legacy_layers(value: object, max_layers: int) -> list[object]:
    """Every intermediate form, outermost first, so callers can fall back to a shallower layer."""
    if max_layers < 0:
        raise ValueError(f"max_layers must be >= 0, got {max_layers}")
    layers = [value]
    while len(layers) <= max_layers and isinstance(layers[-1], str):
        try:
            layers.append(json.loads(layers[-1], parse_constant=_reject_constant))
        except (ValueError, RecursionError):
            break
    return layers


# ---------------------------------------------------------------------------------------------------------
# error details


def _type_name(tp: object) -> str:
    if isinstance(tp, type) and not get_args(tp):
        return tp.__qualname__
    return repr(tp).replace("typing.", "")


def _preview(value: object) -> str:
    """Error details name the value but must not flood logs with a 512 KiB blob."""
    try:
        shown = repr(value)
    except ValueError:  # e.g. an int too long to print
        return f"<{type(value).__qualname__}>"
    if len(shown) <= _PREVIEW_CHARS:
        return shown
    return f"{shown[:_PREVIEW_CHARS]}... ({len(shown)} chars)"


def _reason(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    count = exc.error_count()
    more = f" (and {count - 1} more)" if count > 1 else ""
    at = f" (at {where})" if where else ""
    return f"{first['msg']}{at}{more}"
