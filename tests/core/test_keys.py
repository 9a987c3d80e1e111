"""Key grammar, prefix grammar, size limits and setting-path mapping."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.core.errors import InvalidKeyError, ValueTooLargeError
from accord.core.keys import (
    CONFIG_PREFIX,
    MAX_KEY_BYTES,
    MAX_VALUE_BYTES,
    check_value_size,
    key_to_path,
    path_to_key,
    validate_key,
    validate_prefix,
)

PROPERTY = settings(deadline=None, database=None)

categories = st.from_regex(r"[a-z_][a-z0-9_]{0,30}", fullmatch=True)
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True)
segments = st.from_regex(r"[A-Za-z0-9_.\-]{1,20}", fullmatch=True).filter(lambda s: s not in {".", ".."})


def test_limits() -> None:
    assert MAX_KEY_BYTES == 512
    assert MAX_VALUE_BYTES == 512 * 1024
    assert CONFIG_PREFIX == "config/"


# --- keys -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["a", "config/db/host", "A-b_c.d/E9", "secrets/api.key", "a/.hidden", "a/..b", "-/_/x", "x" * MAX_KEY_BYTES],
)
def test_valid_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("", "empty"),
        ("x" * (MAX_KEY_BYTES + 1), "513 bytes"),
        ("a b", '" "'),
        ("a:b", '":"'),
        ("café", '"é"'),
        ("a\n", '"\\n"'),
        ("a\\b", '"\\\\"'),
        ("/a", "start with '/'"),
        ("a//b", "'//'"),
        ("a/", "end with '/'"),
        (".", '"." segment'),
        ("..", '".." segment'),
        ("a/./b", '"." segment'),
        ("a/../b", '".." segment'),
        ("a/..", '".." segment'),
    ],
)
def test_invalid_keys_name_key_and_rule(key: str, rule: str) -> None:
    with pytest.raises(InvalidKeyError) as caught:
        validate_key(key)
    assert rule in caught.value.detail
    assert repr(key)[:40] in caught.value.detail


def test_key_length_counts_bytes_at_the_boundary() -> None:
    assert validate_key("a/" + "b" * (MAX_KEY_BYTES - 2)) == "a/" + "b" * (MAX_KEY_BYTES - 2)
    with pytest.raises(InvalidKeyError, match="limit is 512"):
        validate_key("a/" + "b" * (MAX_KEY_BYTES - 1))


def test_long_keys_are_truncated_in_errors() -> None:
    with pytest.raises(InvalidKeyError) as caught:
        validate_key("x" * 10_000)
    assert len(caught.value.detail) < 300


def test_non_string_key_is_rejected() -> None:
    not_a_string: Any = 42
    with pytest.raises(InvalidKeyError, match="must be a string"):
        validate_key(not_a_string)


@PROPERTY
@given(st.lists(segments, min_size=1, max_size=10))
def test_segments_joined_by_slash_are_valid_keys(parts: list[str]) -> None:
    key = "/".join(parts)
    assert validate_key(key) == key
    assert validate_prefix(key + "/") == key + "/"


# --- prefixes ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix", ["", "config/", "config/db", "config/db/", "conf", "config/.", "config/..", "x" * MAX_KEY_BYTES]
)
def test_valid_prefixes(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize(
    ("prefix", "rule"),
    [
        ("/config", "start with '/'"),
        ("config//", "'//'"),
        ("a b", '" "'),
        ("config/../", '".." segment'),
        ("./x", '"." segment'),
        ("x" * (MAX_KEY_BYTES + 1), "513 bytes"),
    ],
)
def test_invalid_prefixes_name_prefix_and_rule(prefix: str, rule: str) -> None:
    with pytest.raises(InvalidKeyError) as caught:
        validate_prefix(prefix)
    assert rule in caught.value.detail
    assert "prefix" in caught.value.detail


# --- value size ---------------------------------------------------------------------------------------------------


def test_value_at_limit_is_accepted() -> None:
    check_value_size("k", b"x" * MAX_VALUE_BYTES)
    check_value_size("k", "x" * MAX_VALUE_BYTES)


@pytest.mark.parametrize("data", [b"x" * (MAX_VALUE_BYTES + 1), "x" * (MAX_VALUE_BYTES + 1)], ids=["bytes", "str"])
def test_value_over_limit_names_key_size_and_limit(data: bytes | str) -> None:
    with pytest.raises(ValueTooLargeError) as caught:
        check_value_size("config/db/blob", data)
    detail = caught.value.detail
    assert "'config/db/blob'" in detail
    assert str(MAX_VALUE_BYTES + 1) in detail
    assert str(MAX_VALUE_BYTES) in detail


def test_value_size_counts_utf8_bytes_not_characters() -> None:
    check_value_size("k", "é" * (MAX_VALUE_BYTES // 2))
    with pytest.raises(ValueTooLargeError):
        check_value_size("k", "é" * (MAX_VALUE_BYTES // 2) + "x")


# --- setting paths -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "key"),
    [("db.host", "config/db/host"), ("_x._y", "config/_x/_y"), ("http2.MaxConns", "config/http2/MaxConns")],
)
def test_path_maps_to_config_key(path: str, key: str) -> None:
    assert path_to_key(path) == key
    assert key_to_path(key) == path


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("", "exactly one dot"),
        ("db", "exactly one dot"),
        ("a.b.c", "exactly one dot"),
        (".host", 'category ""'),
        ("Db.host", 'category "Db"'),
        ("1db.host", 'category "1db"'),
        ("d-b.host", 'category "d-b"'),
        ("db.", 'name ""'),
        ("db.1host", 'name "1host"'),
        ("db.ho-st", 'name "ho-st"'),
        ("db.ho/st", 'name "ho/st"'),
        ("db.host ", 'name "host "'),
    ],
)
def test_invalid_paths_name_path_and_rule(path: str, rule: str) -> None:
    with pytest.raises(InvalidKeyError) as caught:
        path_to_key(path)
    assert rule in caught.value.detail
    assert repr(path) in caught.value.detail


def test_path_whose_key_is_too_long_is_rejected() -> None:
    longest_name = "n" * (MAX_KEY_BYTES - len("config/c/"))
    assert len(path_to_key("c." + longest_name)) == MAX_KEY_BYTES
    with pytest.raises(InvalidKeyError, match="setting path"):
        path_to_key("c." + longest_name + "n")


@pytest.mark.parametrize(
    "key",
    [
        "secrets/db/password",
        "configx/db/host",
        "config/db",
        "config/db/",
        "config/db/host/extra",
        "config/Db/host",
        "config/db/ho-st",
        "config//host",
        "config/db.x/host",
    ],
)
def test_keys_that_are_not_settings_have_no_path(key: str) -> None:
    assert key_to_path(key) is None


@PROPERTY
@given(categories, names)
def test_paths_and_keys_round_trip(category: str, name: str) -> None:
    path = f"{category}.{name}"
    key = path_to_key(path)
    assert validate_key(key) == key
    assert key.startswith(CONFIG_PREFIX)
    assert key_to_path(key) == path


def test_json_depth_limit() -> None:
    from accord.core.errors import ValidationFailedError
    from accord.core.keys import MAX_JSON_DEPTH, check_depth

    value: object = "leaf"
    for _ in range(MAX_JSON_DEPTH):
        value = {"k": [value]} if isinstance(value, list) else [value]
    check_depth("a value", value, limit=2 * MAX_JSON_DEPTH)
    with pytest.raises(ValidationFailedError, match="nested deeper than 32 levels"):
        check_depth("a value", value)
