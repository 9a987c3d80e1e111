"""The wire form of a Change: what a receiver decodes is what was committed, minus what must not travel."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from accord.bus.auth import claimed_revision
from accord.bus.redis_bus import REDIS_MESSAGE_MAX_BYTES
from accord.bus.wire import PG_NOTIFY_MAX_BYTES, decode_change, encode_change, peek_revision
from accord.store.types import Change

KEY_CHARS = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/")
LIMITS = st.sampled_from([PG_NOTIFY_MAX_BYTES, REDIS_MESSAGE_MAX_BYTES])
# Large enough to cross the NOTIFY limit now and then, in text and in binary.
VALUES = st.one_of(st.binary(max_size=9000), st.text(max_size=3000).map(str.encode))
TIMES = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)) | st.none()


@st.composite
def changes(draw: st.DrawFn) -> Change:
    op = draw(st.sampled_from(["put", "delete"]))
    return Change(
        revision=draw(st.integers(min_value=1, max_value=2**62)),
        key=draw(st.text(KEY_CHARS, min_size=1, max_size=512)),
        op=op,
        version=draw(st.integers(min_value=1, max_value=2**62)),
        value=draw(VALUES) if op == "put" else None,
        secret=draw(st.booleans()),
        actor=draw(st.text(max_size=20)),
        at=draw(TIMES),
    )


def travels(change: Change, max_bytes: int) -> bool:
    """Whether the value should ride on the bus: never for secrets, and only when the message fits."""
    if change.value is None or change.secret:
        return False
    return len(encode_change(change, max_bytes=10**9).encode()) <= max_bytes


@given(changes(), LIMITS)
def test_a_change_round_trips_except_what_must_not_travel(change: Change, max_bytes: int) -> None:
    text = encode_change(change, max_bytes=max_bytes)
    decoded = decode_change(text)
    assert decoded is not None
    assert (decoded.revision, decoded.key, decoded.op, decoded.version, decoded.secret) == (
        change.revision,
        change.key,
        change.op,
        change.version,
        change.secret,
    )
    if travels(change, max_bytes):
        assert decoded.value == change.value and not decoded.value_omitted
    else:
        assert decoded.value is None
        assert decoded.value_omitted == (change.op == "put")  # the receiver fetches the key instead
    if change.at is None:
        assert decoded.at is None
    else:
        assert decoded.at is not None and abs(decoded.at - change.at) <= timedelta(microseconds=1)
    assert decoded.actor == change.actor and decoded.action is None and decoded.request_id is None


@given(changes(), LIMITS)
def test_a_message_never_exceeds_its_limit_and_never_carries_a_secret(change: Change, max_bytes: int) -> None:
    text = encode_change(change, max_bytes=max_bytes)
    assert len(text.encode()) <= max_bytes
    if change.secret:
        assert "d" not in json.loads(text) and "b" not in json.loads(text)


@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_anything_malformed_decodes_to_none_instead_of_raising(garbage: bytes | str) -> None:
    decoded = decode_change(garbage)
    assert decoded is None or isinstance(decoded, Change)


def test_known_malformed_messages_are_dropped() -> None:
    for text in ("", "[]", "{}", '{"r":"x","k":"a","o":"put","v":1}', '{"r":1,"k":"a","o":"put","v":1,"b":"!!"}'):
        assert decode_change(text) is None, text


@given(changes(), LIMITS)
def test_the_revision_is_read_from_the_head_of_a_message_without_parsing_it(change: Change, max_bytes: int) -> None:
    body = encode_change(change, max_bytes=max_bytes)
    assert peek_revision(body.encode()) == change.revision
    assert claimed_revision(f"a1.{'f' * 64}.{body}") == change.revision
    assert claimed_revision(f"a1.{'f' * 63}.{body}") is None, "a head of the wrong shape names no revision"
    assert claimed_revision(body) is None


@given(st.binary(max_size=200) | st.text(max_size=200))
def test_a_garbled_head_names_no_revision_or_a_plain_number(garbage: bytes | str) -> None:
    found = claimed_revision(garbage)
    assert found is None or (isinstance(found, int) and found >= 0)
    raw = garbage if isinstance(garbage, bytes) else garbage.encode()
    assert peek_revision(b'{"r":' + raw) is None or raw[:1].isdigit()
