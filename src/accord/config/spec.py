"""What the store knows about a setting, whether or not the reading process declared it.

An application declares settings as Python types (``DeclaredSetting``); on connect it registers
their JSON Schema in the store. Tools that never import application code — the CLI, the server —
rebuild a ``StoredSetting`` from that schema and validate exactly as the application would.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jsonschema
from jsonschema.exceptions import best_match

from accord.config.schema_text import NOT_TEXT, parse_typed, read_text
from accord.core import codec
from accord.core.errors import CodecError, ValidationFailedError
from accord.core.keys import path_to_key
from accord.core.masking import is_secret_name, mask_value


class SettingSpec(Protocol):
    """The behaviour every setting description offers, declared or stored."""

    path: str
    key: str
    secret: bool
    env: str | None
    pin_env: bool
    description: str

    @property
    def default(self) -> object: ...

    @property
    def type_name(self) -> str: ...

    def decode(self, text: str) -> object: ...

    def encode(self, value: object) -> str: ...

    def validate(self, value: object) -> object: ...

    def parse_input(self, raw: str) -> object: ...

    def to_stored(self) -> str: ...


def show(spec: SettingSpec, value: object) -> object:
    """A value as it may be displayed: secrets masked, everything else as is."""
    if spec.secret and value not in (None, ""):
        return mask_value(value)
    return value


def failed(path: str, value: object, rule: str, *, secret: bool) -> ValidationFailedError:
    shown = mask_value(value) if secret else _short(value)
    return ValidationFailedError(f"invalid value for {path}: {shown} — {rule}")


def parse_env(spec: SettingSpec, variable: str, raw: str) -> object:
    """An environment variable's value for its setting; the error names both, and never a secret's value."""
    try:
        return spec.parse_input(raw)
    except ValidationFailedError as exc:
        reason = "not a valid value (secret, not shown)" if spec.secret else exc.detail
        raise ValidationFailedError(f"environment variable {variable} for setting {spec.path}: {reason}") from None


def secret_by_name(path: str) -> bool:
    return is_secret_name(path.rsplit(".", 1)[-1])


def _strict_integer(_checker: object, instance: object) -> bool:
    # JSON Schema calls 5.0 an integer, pydantic's strict int does not: a tool must not store what the app rejects.
    return isinstance(instance, int) and not isinstance(instance, bool)


_StrictValidator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)


# Only "regex" is checked: it is what a declaration asks for explicitly (vault.custom_patterns); pydantic's own
# formats (date-time, uuid...) are already enforced by the declaring process and spelled differently here.
_FORMATS = jsonschema.FormatChecker(["regex"])


@dataclass
class StoredSetting:
    """A setting rebuilt from the schema an application registered in the store."""

    path: str
    schema: dict[str, Any]
    default_text: str | None
    description: str = ""
    secret: bool = False
    env: str | None = None
    pin_env: bool = False
    python_type: str = ""
    declared_by: str | None = None
    declared_at: str | None = None
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = path_to_key(self.path)
        self._validator = _StrictValidator(self.schema, format_checker=_FORMATS)

    @classmethod
    def from_stored(cls, path: str, spec_json: str) -> StoredSetting:
        spec = json.loads(spec_json)
        return cls(
            path=path,
            schema=spec["schema"],
            default_text=spec.get("default"),
            description=spec.get("description", ""),
            secret=bool(spec.get("secret")),
            env=spec.get("env"),
            pin_env=bool(spec.get("pin_env")),
            python_type=spec.get("python_type", ""),
            declared_by=spec.get("declared_by"),
            declared_at=spec.get("declared_at"),
        )

    @property
    def type_name(self) -> str:
        return self.python_type or str(self.schema.get("type", "any"))

    @property
    def default(self) -> object:
        return None if self.default_text is None else self.decode(self.default_text)

    def _is_valid(self, value: object) -> bool:
        return bool(self._validator.is_valid(value))

    def decode(self, text: str) -> object:
        value = read_text(text, self.schema, self._is_valid)
        if value is NOT_TEXT:
            shown = "" if self.secret else f": {_short(text)}"
            raise CodecError(f"stored text for {self.path} is not valid for {self.type_name}{shown}")
        return value

    def encode(self, value: object) -> str:
        return codec.encode(value)

    def validate(self, value: object) -> object:
        check_rules(self._validator, value, self, self.type_name)
        if self.schema.get("type") == "number" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)  # a float setting holds 1.0 for 1, as the declaring process stores it
        return value

    def parse_input(self, raw: str) -> object:
        return self.validate(parse_typed(raw, self.schema, self._is_valid))

    def to_stored(self) -> str:
        return stored_spec_json(self.schema, self.default_text, self)


def stored_spec_json(schema: dict[str, Any], default_text: str | None, spec: SettingSpec) -> str:
    body = {
        "schema": schema,
        "default": default_text,
        "description": spec.description,
        "secret": spec.secret,
        "env": spec.env,
        "pin_env": spec.pin_env,
        "python_type": spec.type_name,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def _short(value: object, limit: int = 80) -> str:
    """A value as messages quote it: JSON (never Python repr), cut short."""
    try:
        text = json.dumps(codec.to_data(value), ensure_ascii=False, default=str)
    except (CodecError, ValueError, TypeError):
        text = json.dumps(str(value), ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def schema_checker(schema: Mapping[str, Any]) -> Any:
    """The validator for a setting's JSON Schema, the same for a declaring process and for the CLI and server."""
    return _StrictValidator(schema, format_checker=_FORMATS)


def check_rules(validator: Any, value: object, spec: SettingSpec, type_name: str) -> None:
    """Refuse ``value`` if it breaks the schema, with the one message every entry point gives."""
    error = best_match(validator.iter_errors(value))
    if error is not None:
        where = f" at {error.json_path}" if error.path else ""
        raise failed(spec.path, value, f"{describe_rule(error)}{where} (expected {type_name})", secret=spec.secret)


_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false (or yes/no, on/off, 1/0 typed as text)",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


def describe_rule(error: Any) -> str:
    """A broken JSON Schema rule in words; it never quotes the value itself (a secret stays unshown)."""
    rule, limit = str(error.validator), error.validator_value
    shown = json.dumps(limit, ensure_ascii=False, default=str)
    words = {
        "minimum": f"must be >= {shown}",
        "maximum": f"must be <= {shown}",
        "exclusiveMinimum": f"must be > {shown}",
        "exclusiveMaximum": f"must be < {shown}",
        "multipleOf": f"must be a multiple of {shown}",
        "minLength": f"must be at least {shown} character(s) long",
        "maxLength": f"must be at most {shown} character(s) long",
        "minItems": f"must have at least {shown} item(s)",
        "maxItems": f"must have at most {shown} item(s)",
        "pattern": f"must match the pattern {shown}",
        "enum": f"must be one of {shown}",
        "const": f"must be {shown}",
        "format": f"must be a valid {limit}",
    }
    if rule == "type":
        kinds = limit if isinstance(limit, list) else [limit]
        return "must be " + " or ".join(_TYPE_WORDS.get(str(kind), json.dumps(kind)) for kind in kinds)
    return words.get(rule, f"fails {rule}={shown}")
