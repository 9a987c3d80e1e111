"""The spool: framed, checksummed records; damage is detected, counted and skipped; the rest replays."""

from __future__ import annotations

from pathlib import Path

import orjson
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from accord.events import SamplingPolicy, start
from accord.events.spool import Spool, frame, read_segment


def _payload(i: int, rule: str = "error") -> bytes:
    return orjson.dumps({"event_id": f"p:{i}", "producer": "p", "seq": i, "sampling_rule": rule, "ts": 1.0})


def _segment(tmp_path: Path, n: int) -> Path:
    spool = Spool(tmp_path / "spool", fsync="always")
    spool.append([_payload(i) for i in range(1, n + 1)])
    spool.close()
    [path] = spool.segments()
    return path


@given(st.lists(st.binary(max_size=300), max_size=30), st.integers(min_value=0, max_value=20_000))
def test_any_cut_yields_only_whole_records_in_order(payloads: list[bytes], cut: int) -> None:
    data = b"".join(frame(p) for p in payloads)
    result = read_segment(data[: min(cut, len(data))])
    assert result.records == payloads[: len(result.records)]
    assert result.corrupt == 0


def test_a_truncated_last_record_is_counted_and_skipped(tmp_path: Path) -> None:
    path = _segment(tmp_path, 10)
    data = path.read_bytes()
    path.write_bytes(data[:-7])
    result = Spool.read(path)
    assert [orjson.loads(r)["seq"] for r in result.records] == list(range(1, 10))
    assert (result.truncated, result.corrupt) == (1, 0)


def test_flipped_bits_cost_the_damaged_records_only(tmp_path: Path) -> None:
    path = _segment(tmp_path, 10)
    data = bytearray(path.read_bytes())
    record = len(frame(_payload(1)))
    data[3 * record + 20] ^= 0x10  # in the payload of record 4
    data[6 * record + 1] ^= 0x01  # in the magic of record 7
    path.write_bytes(bytes(data))
    result = Spool.read(path)
    assert [orjson.loads(r)["seq"] for r in result.records] == [1, 2, 3, 5, 6, 8, 9, 10]
    assert (result.corrupt, result.truncated) == (2, 0)


async def test_a_damaged_spool_replays_the_rest_into_the_table(sqlite_url: str, tmp_path: Path) -> None:
    path = _segment(tmp_path, 50)
    data = bytearray(path.read_bytes())
    data[10 * len(frame(_payload(1))) + 30] ^= 0xFF
    path.write_bytes(bytes(data[:-3]))
    pipeline = await start("svc", sqlite_url, None, tmp_path / "spool", policy=SamplingPolicy.of(sample_rate=1.0))
    try:
        assert await pipeline.flush()
        stats = pipeline.stats()
    finally:
        await pipeline.aclose()
    assert (stats.spool_corrupt, stats.spool_truncated, stats.replayed) == (1, 1, 48)
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        seqs = [row[0] for row in conn.execute(sa.text("SELECT seq FROM accord_event ORDER BY rowid"))]
    engine.dispose()
    assert seqs == [i for i in range(1, 50) if i != 11]
    assert Spool(tmp_path / "spool").is_empty()


def test_over_the_cap_sampled_events_are_shed_first(tmp_path: Path) -> None:
    one = len(frame(_payload(1)))  # seq 11..40 are a byte longer, "sampled" two bytes longer than "error"
    spool = Spool(tmp_path / "spool", fsync="never", segment_bytes=10 * one, max_bytes=26 * one)
    spool.append([_payload(i, "sampled" if i % 2 else "error") for i in range(1, 11)])
    spool.append([_payload(i, "error") for i in range(11, 21)])
    spool.append([_payload(i, "error") for i in range(21, 31)])  # needs room: the first segment loses its sampled
    spool.close()
    kept = [orjson.loads(r)["seq"] for p in spool.segments() for r in Spool.read(p).records]
    assert kept == [2, 4, 6, 8, 10, *range(11, 31)]
    assert (spool.dropped_normal, spool.dropped_priority) == (5, 0)
    spool.append([_payload(i, "error") for i in range(31, 41)])  # no sampled left: the oldest segment goes
    spool.close()
    kept = [orjson.loads(r)["seq"] for p in spool.segments() for r in Spool.read(p).records]
    assert kept == list(range(41 - len(kept), 41))  # whole oldest segments went, newest first kept
    assert spool.dropped_normal + spool.dropped_priority == 40 - len(kept) and spool.dropped_priority > 0
