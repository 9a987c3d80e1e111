"""The canonical codec: round trips, strict decoding, user input, and the legacy un-escaper."""

from __future__ import annotations

import datetime
import enum
import json
from typing import Annotated, Any, Literal, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, SecretStr

from accord.core.codec import coerce_legacy, decode, encode, parse_input, unescape_legacy, validate
from accord.core.errors import CodecError, ValidationFailedError

# No deadline: the first call for each type builds a pydantic TypeAdapter, which is slow once and fast after.
PROPERTY = settings(deadline=None, database=None)

Level = Literal["low", "high", "123", "true"]
BoundedText = Annotated[str, Field(max_length=1_000_000)]


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Database(BaseModel):
    host: str
    port: int = Field(alias="Port")
    password: SecretStr
    replicas: list[str] = []


def _is_json_string_literal(text: str) -> bool:
    try:
        return isinstance(json.loads(text), str)
    except ValueError:
        return False


def _dumps_times(value: object, times: int) -> object:
    for _ in range(times):
        value = json.dumps(value)
    return value


finite_floats = st.floats(allow_nan=False, allow_infinity=False)

ROUND_TRIP_CASES: list[tuple[object, st.SearchStrategy[Any]]] = [
    (str, st.text()),
    (BoundedText, st.text()),
    (int, st.integers()),
    (float, finite_floats),
    (bool, st.booleans()),
    (list[str], st.lists(st.text())),
    (list[int], st.lists(st.integers())),
    (dict[str, int], st.dictionaries(st.text(), st.integers())),
    (dict[str, list[str]], st.dictionaries(st.text(), st.lists(st.text()))),
    (Optional[int], st.none() | st.integers()),  # noqa: UP045 - the typing spelling is what users write too
    (int | None, st.none() | st.integers()),
    (Level, st.sampled_from(["low", "high", "123", "true"])),
    (Literal[1, 2, 3], st.sampled_from([1, 2, 3])),
    (tuple[int, str], st.tuples(st.integers(), st.text())),
    (Colour, st.sampled_from(Colour)),
    (Priority, st.sampled_from(Priority)),
]


# --- round trip -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tp", "values"), ROUND_TRIP_CASES, ids=lambda case: str(case))
@PROPERTY
@given(data=st.data())
def test_decode_inverts_encode(tp: object, values: st.SearchStrategy[Any], data: st.DataObject) -> None:
    value = data.draw(values)
    text = encode(value)
    assert decode(text, tp) == value
    assert encode(decode(text, tp)) == text


@PROPERTY
@given(st.text())
def test_strings_are_stored_raw(value: str) -> None:
    assert encode(value) == value


@PROPERTY
@given(st.builds(lambda text, pad: pad + json.dumps(text) + pad, st.text(), st.sampled_from(["", " ", "\n"])))
def test_quoted_text_is_never_unquoted(value: str) -> None:
    assert decode(value, str) == value
    assert decode(value, BoundedText) == value
    assert parse_input(value, str) == value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("", ""),
        ('"already quoted"', '"already quoted"'),
        ("C:\\new\\table", "C:\\new\\table"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (0, "0"),
        (-5, "-5"),
        (1.5, "1.5"),
        (5.0, "5.0"),
        (1e16, "1e+16"),
        ([1, "a"], '[1,"a"]'),
        ({"b": 1, "a": [True, None]}, '{"b":1,"a":[true,null]}'),
        ({"ü": "ß"}, '{"ü":"ß"}'),
        ((1, 2), "[1,2]"),
        (Colour.RED, "red"),
        (Priority.HIGH, "2"),
        (datetime.date(2024, 2, 29), "2024-02-29"),
        (SecretStr("hunter2"), "hunter2"),
    ],
)
def test_encode_gives_canonical_text(value: object, text: str) -> None:
    assert encode(value) == text


def test_models_round_trip_with_aliases_and_secrets() -> None:
    db = Database(host="db1", Port=5432, password=SecretStr("pw"), replicas=["db2"])
    text = encode(db)
    assert text == '{"host":"db1","Port":5432,"password":"pw","replicas":["db2"]}'
    decoded = decode(text, Database)
    assert decoded == db
    assert isinstance(decoded, Database)
    assert decoded.password.get_secret_value() == "pw"


def test_nested_secrets_are_revealed_not_masked() -> None:
    assert encode({"a": [SecretStr("s3cret")]}) == '{"a":["s3cret"]}'


@pytest.mark.parametrize(
    ("text", "tp", "expected"),
    [
        ("123", str, "123"),
        ("true", str, "true"),
        ("null", str, "null"),
        ("123", BoundedText, "123"),
        ("[1]", BoundedText, "[1]"),
        ("null", Optional[int], None),  # noqa: UP045
        ("null", Optional[str], None),  # noqa: UP045 - documented: the non-string reading wins
        ("text", Optional[str], "text"),  # noqa: UP045
        ("5", int | str, 5),
        ("five", int | str, "five"),
        ("true", Level, "true"),
        ("123", Level, "123"),
        ("2024-02-29T12:00:00", datetime.datetime, datetime.datetime(2024, 2, 29, 12)),
        ("1.0", float, 1.0),
        ("1", float, 1.0),
    ],
)
def test_decode_reads_text_by_declared_type(text: str, tp: object, expected: object) -> None:
    assert decode(text, tp) == expected


# --- strict decoding errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tp", "type_name"),
    [
        ("1", bool, "bool"),
        ("yes", bool, "bool"),
        ('"true"', bool, "bool"),
        ("5.0", int, "int"),
        (" 5", int, "int"),
        ("five", int, "int"),
        ("NaN", float, "float"),
        ("Infinity", float, "float"),
        ("[1,", list[int], "list[int]"),
        ('[1,"x"]', list[int], "list[int]"),
        ("{}", list[int], "list[int]"),
        ('{"a":"b"}', dict[str, int], "dict[str, int]"),
        ("medium", Level, "Literal['low', 'high', '123', 'true']"),
        ("blue", Colour, "Colour"),
        ('{"host":"h"}', Database, "Database"),
        ("", int, "int"),
    ],
)
def test_decode_errors_name_the_type_and_text(text: str, tp: object, type_name: str) -> None:
    with pytest.raises(CodecError) as caught:
        decode(text, tp)
    assert type_name in caught.value.detail
    assert repr(text) in caught.value.detail


def test_decode_error_truncates_long_text() -> None:
    with pytest.raises(CodecError) as caught:
        decode("x" * 10_000, int)
    assert len(caught.value.detail) < 300


def test_decode_error_points_into_containers() -> None:
    with pytest.raises(CodecError, match=r"\(at 1\)"):
        decode('[1,"x"]', list[int])


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), [1.0, float("nan")], {"a": float("inf")}])
def test_encode_refuses_non_finite_floats(value: object) -> None:
    with pytest.raises(CodecError):
        encode(value)


@pytest.mark.parametrize("value", [object(), "\ud800", 10**5000], ids=["object", "lone-surrogate", "huge-int"])
def test_encode_refuses_unstorable_values(value: object) -> None:
    with pytest.raises(CodecError):
        encode(value)


# --- validate and parse_input ------------------------------------------------------------------------------


def test_validate_coerces_leniently_by_default() -> None:
    assert validate("5", int) == 5
    assert validate([1, 2], tuple[int, ...]) == (1, 2)


def test_validate_strict_refuses_coercion() -> None:
    with pytest.raises(ValidationFailedError, match="int"):
        validate("5", int, strict=True)


def test_validate_error_names_type() -> None:
    with pytest.raises(ValidationFailedError, match=r"list\[int\]"):
        validate(["x"], list[int])


@pytest.mark.parametrize(
    ("raw", "tp", "expected"),
    [
        ('"quoted"', str, '"quoted"'),
        ("  spaced  ", str, "  spaced  "),
        ("", str, ""),
        ("yes", bool, True),
        ("false", bool, False),
        (" 5", int, 5),
        ("5", float, 5.0),
        ('["a","b"]', list[str], ["a", "b"]),
        ('{"a":1}', dict[str, int], {"a": 1}),
        ("null", Optional[int], None),  # noqa: UP045
        ("green", Colour, Colour.GREEN),
        ("2", Priority, Priority.HIGH),
    ],
)
def test_parse_input_accepts_what_people_type(raw: str, tp: object, expected: object) -> None:
    assert parse_input(raw, tp) == expected


@pytest.mark.parametrize(("raw", "tp"), [("maybe", bool), ("5 apples", int), ("[1,", list[int]), ("blue", Colour)])
def test_parse_input_rejects_invalid_input(raw: str, tp: object) -> None:
    with pytest.raises(ValidationFailedError) as caught:
        parse_input(raw, tp)
    assert repr(raw) in caught.value.detail


@pytest.mark.parametrize(("tp", "values"), ROUND_TRIP_CASES, ids=lambda case: str(case))
@PROPERTY
@given(data=st.data())
def test_parse_input_accepts_what_encode_prints(
    tp: object, values: st.SearchStrategy[Any], data: st.DataObject
) -> None:
    value = data.draw(values)
    assert parse_input(encode(value), tp) == value


# --- legacy un-escaping ------------------------------------------------------------------------------------

# Strings that are themselves JSON string literals cannot be told apart from one layer of escaping.
legacy_text = st.text().filter(lambda text: not _is_json_string_literal(text))

LEGACY_CASES: list[tuple[object, st.SearchStrategy[Any], int]] = [
    (str, legacy_text, 0),
    (int, st.integers(), 1),
    (float, finite_floats, 1),
    (bool, st.booleans(), 1),
    (list[str], st.lists(st.text()), 1),
    (list[int], st.lists(st.integers()), 1),
    (dict[str, int], st.dictionaries(st.text(), st.integers()), 1),
    (dict[str, list[str]], st.dictionaries(st.text(), st.lists(st.text())), 1),
]


@pytest.mark.parametrize(("tp", "values", "min_layers"), LEGACY_CASES, ids=lambda case: str(case))
@PROPERTY
@given(data=st.data())
def test_coerce_legacy_peels_every_escaping_layer(
    tp: object, values: st.SearchStrategy[Any], min_layers: int, data: st.DataObject
) -> None:
    value = data.draw(values)
    layers = data.draw(st.integers(min_value=min_layers, max_value=5))
    assert coerce_legacy(_dumps_times(value, layers), tp) == value


@pytest.mark.parametrize(
    ("raw", "tp", "expected"),
    [
        ("123", str, "123"),
        ("true", str, "true"),
        ("null", str, "null"),
        ("[1, 2]", str, "[1, 2]"),
        ("", str, ""),
        ('""', str, ""),
        ("C:\\new\\table", str, "C:\\new\\table"),
        (json.dumps("C:\\new\\table"), str, "C:\\new\\table"),
        ('"C:\\q"', str, '"C:\\q"'),  # \q is no JSON escape, so the text is not JSON and stays as it is
        ("héllo wörld ✓", str, "héllo wörld ✓"),
        (json.dumps(json.dumps("日本語")), str, "日本語"),
        ('"\\"foo\\""', str, "foo"),
        ("123", int, 123),
        ('"123"', int, 123),
        ("true", bool, True),
        ('"true"', bool, True),
        ("[1, 2]", list[int], [1, 2]),
        ('"[1,2]"', list[int], [1, 2]),
        ('["\\"a\\""]', list[str], ['"a"']),  # elements of a peeled container are data, never peeled
        ("null", Optional[int], None),  # noqa: UP045
        ("red", Colour, Colour.RED),
        ('"red"', Colour, Colour.RED),
        (5, int, 5),
        ([1, 2], list[int], [1, 2]),
    ],
)
def test_coerce_legacy_edge_cases(raw: object, tp: object, expected: object) -> None:
    assert coerce_legacy(raw, tp) == expected


@pytest.mark.parametrize(("raw", "tp"), [("abc", int), ("", int), ('"[1,"', list[int]), (5, str)])
def test_coerce_legacy_errors_name_value_and_type(raw: object, tp: object) -> None:
    with pytest.raises(ValidationFailedError) as caught:
        coerce_legacy(raw, tp)
    assert repr(raw) in caught.value.detail


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (json.dumps(json.dumps(json.dumps("abc"))), "abc"),
        ("[1, 2]", [1, 2]),
        ('"[1,2]"', [1, 2]),
        ("true", True),
        ("123", 123),
        ("abc", "abc"),
        ("", ""),
        ("NaN", "NaN"),
        ("C:\\new", "C:\\new"),
        (7, 7),
    ],
)
def test_unescape_legacy(raw: object, expected: object) -> None:
    assert unescape_legacy(raw) == expected


def test_unescape_legacy_stops_after_max_layers() -> None:
    six_layers = _dumps_times("abc", 6)
    assert unescape_legacy(six_layers) == json.dumps("abc")
    assert unescape_legacy(six_layers, max_layers=6) == "abc"
    assert unescape_legacy(six_layers, max_layers=0) == six_layers


def test_unescape_legacy_rejects_negative_layers() -> None:
    with pytest.raises(ValueError, match="max_layers"):
        unescape_legacy("abc", max_layers=-1)
