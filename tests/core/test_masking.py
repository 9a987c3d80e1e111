"""Which names and keys are secret, and how their values are shown."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from accord.core.masking import MASK, is_secret_key, is_secret_name, mask, mask_value

PROPERTY = settings(deadline=None, database=None)


@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "STRIPE_API_KEY",
        "apiKey",
        "api-key",
        "password",
        "db_password",
        "passwd",
        "client_secret",
        "secrets",
        "github_token",
        "private_key",
        "ssh-private-key",
        "aws_credentials",
        "Credential",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["host", "port", "username", "key", "private", "api", "pass", "cred", ""])
def test_ordinary_names(name: str) -> None:
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    "key",
    ["secrets/anything", "secrets/db/host", "config/db/password", "config/stripe/apiKey", "token", "db.password"],
)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    ["config/db/host", "config/password/host", "secretsx/host", "config/secrets/host", "config/db/key"],
)
def test_ordinary_keys(key: str) -> None:
    assert not is_secret_key(key)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("", MASK),
        ("a", MASK),
        ("x" * 15, MASK),
        ("0123456789abcdef", "0123****cdef"),
        ("sk_live_0123456789abcdefXYZW", "sk_l****XYZW"),
    ],
)
def test_mask(value: str, shown: str) -> None:
    assert mask(value) == shown


@PROPERTY
@given(st.text())
def test_mask_never_shows_more_than_eight_characters(value: str) -> None:
    shown = mask(value)
    assert MASK in shown
    assert len(shown) <= len(MASK) + 8
    if len(value) < 16:
        assert shown == MASK


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("hunter2", MASK),
        (12345678901234567890, "1234****7890"),
        (True, MASK),
        (None, MASK),
        ({"password": "x"}, '{"pa****"x"}'),
        (SecretStr("a" * 12 + "b" * 12), "aaaa****bbbb"),
        (float("nan"), MASK),
        (object(), MASK),
    ],
)
def test_mask_value_masks_canonical_text(value: object, shown: str) -> None:
    assert mask_value(value) == shown
