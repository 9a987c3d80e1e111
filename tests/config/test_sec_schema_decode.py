"""Every schema pydantic produces decodes from the store as the declaring process would read it.

The server and the CLI only have the stored JSON Schema; a union, enum, ``$ref`` or nesting of those
used to fall through to ``json.loads`` and fail, with the plaintext in the error.
"""

from __future__ import annotations

import enum
import json
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from accord.config.settings import Setting, SettingsGroup
from accord.config.spec import StoredSetting, parse_env
from accord.core.errors import CodecError, ValidationFailedError


class Colour(enum.Enum):
    RED = "red"
    TWO = 2


class Point(BaseModel):
    x: int
    colour: Colour


class Table(SettingsGroup, category="table"):
    opt_text: str | None = Setting(None)
    opt_int: int | None = Setting(None)
    either: int | str = Setting(0)
    literal: Literal["a", "b"] = Setting("a")
    mixed_enum: Colour = Setting(Colour.RED)
    point: Point = Setting(Point(x=1, colour=Colour.RED))
    opt_point: Point | None = Setting(None)
    points: list[Point] = Setting([])
    by_name: dict[str, Point | None] = Setting({})
    names: list[str | None] = Setting([])
    api_key: str | None = Setting(None, secret=True)


CASES: list[tuple[str, list[Any]]] = [
    ("opt_text", [None, "sk-live-abc", "hello world", "", "[not json", "123", "true"]),
    ("opt_int", [None, 0, 5, -7]),
    ("either", [5, "word", "with space"]),
    ("literal", ["a", "b"]),
    ("mixed_enum", [Colour.RED, Colour.TWO]),
    ("point", [Point(x=2, colour=Colour.TWO)]),
    ("opt_point", [None, Point(x=3, colour=Colour.RED)]),
    ("points", [[], [Point(x=1, colour=Colour.RED), Point(x=2, colour=Colour.TWO)]]),
    ("by_name", [{}, {"a": None, "b": Point(x=1, colour=Colour.RED)}]),
    ("names", [[], ["a", None, "c"]]),
    ("api_key", [None, "sk-live-0123456789abcdef"]),
]


def _stored(name: str) -> tuple[Any, StoredSetting]:
    declared = Table.__settings__[name]
    return declared, StoredSetting.from_stored(declared.path, declared.to_stored())


@pytest.mark.parametrize(("name", "values"), CASES, ids=[c[0] for c in CASES])
def test_stored_schema_reads_what_the_declaration_wrote(name: str, values: list[Any]) -> None:
    declared, stored = _stored(name)
    for value in values:
        if name == "opt_text" and value in ("123", "true"):
            continue  # the documented ambiguity of str | None: JSON text reads as its JSON value
        text = declared.encode(value)
        wanted = to_jsonable_python(value)
        assert stored.decode(text) == wanted, (name, text)
        assert stored.validate(stored.decode(text)) == wanted
        assert stored.parse_input(text) == wanted
        assert declared.decode(text) == declared.validate(value)


def test_the_stored_default_decodes() -> None:
    for name, _ in CASES:
        declared, stored = _stored(name)
        assert stored.default == to_jsonable_python(declared.default), name


@given(st.text().filter(lambda t: t.strip() == t and not _json_non_string(t)))
def test_any_plain_text_is_an_optional_string(text: str) -> None:
    _, stored = _stored("opt_text")
    assert stored.decode(text) == text
    assert stored.parse_input(text) == text


def _json_non_string(text: str) -> bool:
    try:
        return not isinstance(json.loads(text), str)
    except ValueError:
        return False


def test_undecodable_secret_text_is_not_quoted() -> None:
    _, stored = _stored("points")
    secret = StoredSetting(stored.path, stored.schema, None, secret=True)
    with pytest.raises(CodecError) as caught:
        secret.decode("sk-live-PLAINTEXT-tail")
    assert "PLAINTEXT" not in caught.value.detail
    with pytest.raises(CodecError) as caught:
        stored.decode("not-a-secret-here")
    assert "not-a-secret-here" in caught.value.detail


def test_a_bad_secret_env_var_names_variable_and_setting_not_value() -> None:
    class Keys(SettingsGroup, category="keys"):
        token_limit: int = Setting(1, secret=True)

    spec = Keys.__settings__["token_limit"]
    for candidate in (spec, StoredSetting.from_stored(spec.path, spec.to_stored())):
        with pytest.raises(ValidationFailedError) as caught:
            parse_env(candidate, "APP_TOKEN_LIMIT", "sk-PLAINTEXT-value")
        detail = caught.value.detail
        assert "APP_TOKEN_LIMIT" in detail and "keys.token_limit" in detail
        assert "PLAINTEXT" not in detail


async def test_a_bad_legacy_secret_is_named_not_quoted(sqlite_url: str) -> None:
    import accord
    from accord.config.admin import ConfigAdmin

    class Legacy(SettingsGroup, category="legacy"):
        api_key: int = Setting(1)

    async with await accord.connect(sqlite_url, "", groups=[Legacy], watch=False) as cfg:
        with pytest.raises(ValidationFailedError) as caught:
            await ConfigAdmin(cfg).migrate({"legacy": {"api_key": "sk-PLAINTEXT-long-value"}}, dry_run=True)
    assert "legacy.api_key" in caught.value.detail and "PLAINTEXT" not in caught.value.detail
