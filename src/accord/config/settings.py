"""Declaring settings: ``Setting(...)`` fields on ``SettingsGroup`` subclasses.

A group instance held by a LiveConfig keeps the current values in its ``__dict__``; ``Setting``
is a non-data descriptor, so a read such as ``cfg.embedding.model`` is a plain attribute lookup.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin, get_type_hints

from pydantic import Field, PydanticUserError, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from accord.config.schema_text import parse_typed
from accord.config.spec import check_rules, failed, schema_checker, secret_by_name, stored_spec_json
from accord.core import codec
from accord.core.errors import AccordError, CodecError
from accord.core.keys import path_to_key

_CATEGORY = re.compile(r"^[a-z_][a-z0-9_]*$")
_CONSTRAINTS = ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern", "multiple_of")


@dataclass
class SettingInfo:
    """What ``Setting(...)`` records before the class it lives on is complete."""

    default: Any
    env: str | None = None
    description: str = ""
    secret: bool | None = None
    pin_env: bool = False
    constraints: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type) -> Any:
        if instance is None:
            return self
        return self.default


def Setting(  # noqa: N802 - reads like a type in declarations, as pydantic's Field does
    default: Any,
    *,
    env: str | None = None,
    description: str = "",
    secret: bool | None = None,
    pin_env: bool = False,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
    multiple_of: float | None = None,
) -> Any:
    """Declare a setting with its default; the annotation on the attribute is its type.

    ``secret`` defaults to a guess from the name (api_key, password, token...). ``env`` names an
    environment variable that seeds the value while nothing is stored (or always wins with ``pin_env``).
    """
    given: dict[str, object] = {
        "ge": ge,
        "gt": gt,
        "le": le,
        "lt": lt,
        "min_length": min_length,
        "max_length": max_length,
    }
    given |= {"pattern": pattern, "multiple_of": multiple_of}
    constraints = {k: v for k, v in given.items() if v is not None}
    return SettingInfo(default, env, description, secret, pin_env, constraints)


_PLAIN_KEYS = {"type", "title", "description", "default"}
_PLAIN_TYPES = ("string", "integer", "number", "boolean")


class DeclaredSetting:
    """A setting as its application declared it: a Python type plus constraints, validated by pydantic."""

    def __init__(self, category: str, info: SettingInfo, annotation: Any) -> None:
        self.path = f"{category}.{info.name}"
        self.key = path_to_key(self.path)
        self.name = info.name
        self.annotation = annotation
        self.env = info.env
        self.description = info.description
        self.pin_env = info.pin_env
        self.secret = info.secret if info.secret is not None else secret_by_name(self.path)
        self.constraints = info.constraints
        self._default = info.default
        self.validate(info.default)

    @cached_property
    def _adapter(self) -> TypeAdapter[Any]:
        if self.constraints:
            return TypeAdapter(Annotated[self.annotation, Field(**self.constraints)])  # type: ignore[arg-type]
        return TypeAdapter(self.annotation)

    @property
    def default(self) -> object:
        return self._default

    @property
    def type_name(self) -> str:
        return type_label(self.annotation)

    def decode(self, text: str) -> object:
        try:
            return codec.decode(text, self.annotation)
        except CodecError:
            if not self.secret:
                raise
            raise CodecError(
                f"stored text for {self.path} is not valid for {self.type_name} (secret, not shown)"
            ) from None

    def encode(self, value: object) -> str:
        return codec.encode(value)

    @cached_property
    def _schema(self) -> dict[str, Any]:
        try:
            return self._adapter.json_schema()
        except PydanticUserError:
            return {}  # a type JSON Schema cannot describe: pydantic alone checks it

    @cached_property
    def _checker(self) -> Any:
        return schema_checker(self._schema)

    def _is_valid(self, value: object) -> bool:
        return bool(self._checker.is_valid(value))

    @cached_property
    def _plain(self) -> bool:
        """A scalar type and no rules: then pydantic's strict check accepts exactly what the schema accepts."""
        return set(self._schema) <= _PLAIN_KEYS and self._schema.get("type") in _PLAIN_TYPES

    def validate(self, value: object) -> object:
        """The stored schema's rules first, so the message is the one the CLI and server give; then pydantic.

        A plain scalar that pydantic accepts skips the schema (every change of every replica passes
        here); one it refuses takes the full path, so the message is the same."""
        if self._plain:
            with contextlib.suppress(PydanticValidationError):
                return self._adapter.validate_python(value, strict=True)
        try:
            data = codec.to_data(value)
        except CodecError:
            data = None
        else:
            check_rules(self._checker, data, self, self.type_name)
        try:
            return self._adapter.validate_python(value, strict=True)
        except PydanticValidationError as exc:
            rule = "; ".join(e["msg"] + _at(e["loc"]) for e in exc.errors())
            raise failed(self.path, value, f"{rule} (expected {self.type_name})", secret=self.secret) from None

    def parse_input(self, raw: str) -> object:
        """Typed text read exactly as a process without this class reads it (``StoredSetting.parse_input``),
        then made the declared Python type."""
        value = parse_typed(raw, self._schema, self._is_valid)
        check_rules(self._checker, value, self, self.type_name)
        try:
            typed = self._adapter.validate_json(json.dumps(value), strict=True)
        except PydanticValidationError as exc:
            rule = "; ".join(e["msg"] + _at(e["loc"]) for e in exc.errors())
            raise failed(self.path, raw, f"{rule} (expected {self.type_name})", secret=self.secret) from None
        return self.validate(typed)

    def to_stored(self) -> str:
        schema = self._adapter.json_schema()
        return stored_spec_json(schema, codec.encode(self._default), self)


def _at(loc: tuple[int | str, ...]) -> str:
    return f" at {'.'.join(str(part) for part in loc)}" if loc else ""


def type_label(annotation: Any) -> str:
    """How a type reads in messages and listings: ``dict[str, str]``, without ``Annotated`` metadata."""
    if get_origin(annotation) is Annotated:
        return type_label(get_args(annotation)[0])
    args = get_args(annotation)
    if args and get_origin(annotation) in (Union, UnionType):
        return " | ".join(type_label(arg) for arg in args)
    if args and hasattr(get_origin(annotation), "__name__") and get_origin(annotation) is not Literal:
        return f"{get_origin(annotation).__name__}[{', '.join(type_label(arg) for arg in args)}]"
    if annotation is type(None):
        return "None"
    if get_origin(annotation) is None and hasattr(annotation, "__name__"):
        return str(annotation.__name__)
    return str(annotation).replace("typing.", "")


class SettingsGroup:
    """Base class of a category of settings: ``class Embedding(SettingsGroup, category="embedding")``."""

    __category__: ClassVar[str]
    __settings__: ClassVar[dict[str, DeclaredSetting]]

    def __init_subclass__(cls, category: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = category or getattr(cls, "__category__", None) or cls.__name__.lower()
        if not _CATEGORY.match(name):
            raise AccordError(f"category {name!r} of {cls.__qualname__} must match [a-z_][a-z0-9_]*")
        cls.__category__ = name
        cls.__settings__ = dict(_collect(cls, name))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"settings are read-only here; use `await cfg.set('{self.__category__}.{name}', ...)`")

    def __repr__(self) -> str:
        shown = {n: ("****" if s.secret else self.__dict__.get(n)) for n, s in self.__settings__.items()}
        return f"{type(self).__name__}({shown})"


def _collect(cls: type[SettingsGroup], category: str) -> dict[str, DeclaredSetting]:
    hints = get_type_hints(cls, include_extras=True)
    found: dict[str, DeclaredSetting] = {}
    for name, annotation in hints.items():
        if name.startswith("_") or get_origin(annotation) is ClassVar:
            continue
        raw = cls.__dict__[name] if name in cls.__dict__ else _inherited(cls, name)
        info = raw if isinstance(raw, SettingInfo) else SettingInfo(raw, name=name)
        info.name = name
        if not isinstance(raw, SettingInfo):
            setattr(cls, name, info)
        found[name] = DeclaredSetting(category, info, annotation)
    return found


def _inherited(cls: type, name: str) -> Any:
    for base in cls.__mro__[1:]:
        if name in base.__dict__:
            return base.__dict__[name]
    raise AccordError(f"setting {cls.__qualname__}.{name} has a type but no default: use `{name}: T = Setting(...)`")
