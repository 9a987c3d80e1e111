"""Go's duration grammar in and out: what Consul clients send, what they parse back."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accord.core.errors import ValidationFailedError
from accord.registry.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("0.5h", 1800.0),
        ("0", 0.0),
        ("120000ms", 120.0),
        ("-1.5s", -1.5),
        ("1\u00b5s", 1e-6),
        ("20ns", 2e-8),
        (".5s", 0.5),
    ],
)
def test_go_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5", "", "s", "10x", "1m 30s", "--1s"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValidationFailedError):
        parse_duration(text)


def test_a_json_number_is_nanoseconds() -> None:
    assert parse_duration(15_000_000_000) == 15.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (10, "10s"), (90, "1m30s"), (3600, "1h0m0s"), (1.5, "1.5s"), (0.1, "100ms"), (2e-8, "20ns")],
)
def test_durations_format_as_go_does(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(0, 10**15))
def test_formatting_round_trips_through_parsing(ns: int) -> None:
    assert round(parse_duration(format_duration(ns / 1e9)) * 1e9) == ns
