"""Bad events never hurt the request: each case is coerced, truncated, masked or dropped, and counted."""

from __future__ import annotations

import datetime
from pathlib import Path

import orjson
import sqlalchemy as sa

from accord.events import Pipeline, SamplingPolicy, start
from accord.events.prepare import Preparer
from accord.events.stats import Counters

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"


def _prepare(event: dict[str, object], *, max_bytes: int = 64 * 1024) -> tuple[dict[str, object] | None, Counters]:
    counters = Counters()
    data = Preparer(counters, max_event_bytes=max_bytes).prepare({"event_id": "p:1", "sampling_rule": "error", **event})
    return (orjson.loads(data) if data is not None else None), counters


def test_values_json_cannot_hold_are_coerced_and_counted() -> None:
    out, counters = _prepare({"when": datetime.date(2026, 1, 2), "blob": b"\xffab", "items": {1, 2}, 3: "k"})
    assert out is not None
    assert out["blob"] == "\ufffdab" and out["3"] == "k"
    assert isinstance(out["when"], str) and isinstance(out["items"], str)
    assert counters.coerced == 1


def test_an_event_over_the_size_cap_is_truncated_and_one_that_cannot_fit_dropped() -> None:
    out, counters = _prepare({"body": "x" * 10_000, "note": "short"}, max_bytes=4096)
    assert out is not None and str(out["body"]).endswith("[truncated 8976 chars]") and out["note"] == "short"
    assert counters.truncated == 1
    many = {f"f{i}": "y" * 900 for i in range(20)}  # no single long field to cut
    gone, counters = _prepare(many, max_bytes=4096)
    assert gone is None and counters.dropped[("too_large", "priority")] == 1


def test_a_field_named_like_a_secret_is_masked() -> None:
    out, counters = _prepare({"password": "hunter2", "api_key": "sk-1234567890abcdefghij"})
    assert out is not None
    assert out["password"] == "****" and out["api_key"] == "sk-1****ghij"
    assert counters.masked == 1


def test_an_aws_key_anywhere_in_a_value_is_masked_by_the_vault_detectors() -> None:
    out, _ = _prepare({"error_message": f"denied for {AWS_KEY} at db", "nested": {"list": [f"key={AWS_KEY}"]}})
    assert out is not None
    assert AWS_KEY not in orjson.dumps(out).decode()
    assert str(out["error_message"]).startswith("denied for [AWS_") and str(out["error_message"]).endswith(" at db")


def test_emit_never_raises_on_a_non_mapping(tmp_path: Path) -> None:
    pipeline = Pipeline("svc", policy=SamplingPolicy.of(sample_rate=1.0), spool_dir=tmp_path / "spool")
    assert pipeline.emit(42) is False  # type: ignore[arg-type]
    assert pipeline.stats().dropped == {"invalid/normal": 1}


async def test_the_secret_never_reaches_the_table(sqlite_url: str, tmp_path: Path) -> None:
    pipeline = await start("svc", sqlite_url, None, tmp_path / "spool", policy=SamplingPolicy.of(sample_rate=1.0))
    try:
        pipeline.emit({"status": 500, "error_message": f"leaked {AWS_KEY}", "token": "abcdefgh12345678xyz"})
        assert await pipeline.flush()
    finally:
        await pipeline.aclose()
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        body = conn.execute(sa.text("SELECT body FROM accord_event")).scalar_one()
    engine.dispose()
    assert AWS_KEY not in body and "abcdefgh12345678xyz" not in body and "abcd****8xyz" in body
