"""The Consul key <-> store key mapping: reversible for any text, inside the store's grammar, prefixes cover."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accord.core.errors import InvalidKeyError, ValidationFailedError
from accord.core.keys import validate_key
from accord.registry.kvkeys import (
    KvMeta,
    decode_key,
    encode_key,
    pack_value,
    store_prefix,
    unpack_value,
)

keys = st.text(min_size=1, max_size=60)


@given(keys)
def test_every_text_key_round_trips_and_is_a_valid_store_key(key: str) -> None:
    try:
        stored = encode_key(key)
    except InvalidKeyError:
        assert len(key.encode()) * 3 > 500  # only keys too long once escaped are refused
        return
    assert validate_key(stored) == stored
    assert decode_key(stored) == key


@given(keys, keys)
def test_distinct_keys_never_share_a_store_key(a: str, b: str) -> None:
    if a != b:
        assert encode_key(a) != encode_key(b)


@given(keys, st.text(max_size=20))
def test_the_store_prefix_of_a_prefix_covers_every_key_that_starts_with_it(prefix: str, rest: str) -> None:
    assert encode_key(prefix + rest).startswith(store_prefix(prefix))


@pytest.mark.parametrize(
    ("key", "stored"),
    [
        ("app/db/url", "kv/app/db/url"),
        ("dir/", "kv/dir/_"),
        ("a//b", "kv/a/_/b"),
        ("x_y", "kv/x_5Fy"),
        ("..", "kv/_2E_2E"),
    ],
)
def test_ordinary_keys_keep_their_spelling_and_odd_ones_are_escaped(key: str, stored: str) -> None:
    assert encode_key(key) == stored


def test_the_empty_key_is_consuls_missing_key_name() -> None:
    with pytest.raises(InvalidKeyError, match="Missing key name"):
        encode_key("")


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.uuids(), st.binary(max_size=200))
def test_the_envelope_round_trips(flags: int, lock_index: int, session: object, raw: bytes) -> None:
    meta = KvMeta(flags, lock_index, str(session))
    assert unpack_value(pack_value(meta, raw)) == (meta, raw)


def test_a_value_without_envelope_is_refused() -> None:
    with pytest.raises(ValidationFailedError):
        unpack_value(b"plain")
