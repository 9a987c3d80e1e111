"""Sampling: rule keeps are total, the hashed rest is near the rate, and every process decides alike."""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import random
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from accord.events import Pipeline, SamplingPolicy, hash_unit, start
from accord.events.pipeline import PipelineOptions
from accord.events.sampling import PRIORITY_RULES
from tests.events.conftest import wait_for

POLICY = SamplingPolicy.of(critical_routes=["/pay/{order}"], slow_ms=500, sample_rate=0.05, salt="s1")
N = 100_000


def _mixed(n: int, seed: int = 7) -> list[dict[str, object]]:
    rng = random.Random(seed)
    events: list[dict[str, object]] = []
    for i in range(n):
        roll = rng.random()
        status = 500 if roll < 0.1 else 200
        duration = 800.0 if 0.1 <= roll < 0.15 else 12.0
        route = "/pay/{order}" if 0.15 <= roll < 0.2 else "/items/{id}"
        rid = f"req-{i}" if i % 2 else rng.getrandbits(128).to_bytes(16, "big").hex()
        events.append({"request_id": rid, "status": status, "duration_ms": duration, "route": route})
    return events


def _decisions(pipeline: Pipeline, events: list[dict[str, object]]) -> str:
    """A digest of which request ids were kept, comparable across processes."""
    kept = [str(e["request_id"]) for e in events if pipeline.emit(e)]
    return hashlib.sha256("\n".join(kept).encode()).hexdigest()


def _pipeline(tmp_path: Path, policy: SamplingPolicy = POLICY) -> Pipeline:
    return Pipeline("svc", policy=policy, spool_dir=tmp_path / "spool", options=PipelineOptions(buffer_events=2 * N))


def test_rule_keeps_are_total_and_the_rest_is_near_the_rate(tmp_path: Path) -> None:
    """On the issue's 100,000 mixed events; the ±1 % (relative) bound needs more events: the next test."""
    pipeline = _pipeline(tmp_path)
    events = _mixed(N)
    normal = [e for e in events if POLICY.rule_for(e["status"], None, e["duration_ms"], e["route"]) is None]
    for event in events:
        pipeline.emit(event)
    kept = pipeline._buffer.take(2 * N)  # what the batcher would deliver, with the fields emit stamped
    priority = [e for e in kept if e["sampling_rule"] in PRIORITY_RULES]
    assert len(priority) == N - len(normal)  # every error, slow and critical event
    assert {e["sampling_rule"] for e in priority} == {"error", "slow", "critical"}
    assert all(e["sample_rate"] == 1.0 for e in priority)
    sampled = [e for e in kept if e["sampling_rule"] == "sampled"]
    # ~80,000 normal events: the binomial's relative standard deviation is sqrt(0.95 / (n * 0.05)) = 1.5 %,
    # so relative ±1 % cannot be promised here; 4 sigma can (the hash is deterministic: so is the outcome).
    sigma = math.sqrt((1 - 0.05) / (len(normal) * 0.05))
    assert abs(len(sampled) / len(normal) / 0.05 - 1) <= 4 * sigma
    assert all(e["sample_rate"] == 0.05 and e["policy_version"] == POLICY.version for e in sampled)
    assert pipeline.stats().sampled_out == len(normal) - len(sampled)


RATE_EVENTS = 2_000_000


@pytest.mark.parametrize(("rate", "salt"), [(0.05, "s1"), (0.05, "prod-eu"), (0.2, "s1")])
def test_the_hashed_share_is_within_one_percent_of_the_rate_relative(tmp_path: Path, rate: float, salt: str) -> None:
    """Issue 11's "within ±1 % of the rate", read as relative error: kept / normal within rate * (1 ± 0.01).

    2,000,000 normal events through ``emit`` (half middleware-style random hex ids, half sequential
    ``req-N``): at 5 % the relative standard deviation is sqrt(0.95 / (2e6 * 0.05)) = 0.31 %, so ±1 % is
    3.2 sigma for an ideal uniform hash (7 sigma at 20 %). The hash and the ids are deterministic, so the
    outcome is too: this fails only if the hash is biased, never by chance on a rerun.
    """
    policy = SamplingPolicy.of(sample_rate=rate, salt=salt)
    options = PipelineOptions(buffer_events=int(RATE_EVENTS * rate * 1.2))
    pipeline = Pipeline("svc", policy=policy, spool_dir=tmp_path / "spool", options=options)
    rng = random.Random(11)
    emit = pipeline.emit
    kept = 0
    for i in range(RATE_EVENTS):
        rid = f"req-{i}" if i % 2 else f"{rng.getrandbits(128):032x}"
        kept += emit({"request_id": rid, "status": 200, "duration_ms": 3.0, "route": "/items/{id}"})
    assert pipeline.stats().kept == {"sampled": kept}
    assert pipeline.stats().sampled_out == RATE_EVENTS - kept
    assert abs(kept / RATE_EVENTS / rate - 1) <= 0.01, f"kept {kept / RATE_EVENTS:.5f} of the events at rate {rate}"


def test_raising_the_rate_only_adds_events(tmp_path: Path) -> None:
    events = _mixed(20_000)
    low_pipeline = _pipeline(tmp_path)
    low = {str(e["request_id"]) for e in events if low_pipeline.emit(e)}
    higher = SamplingPolicy.of(critical_routes=["/pay/{order}"], slow_ms=500, sample_rate=0.2, salt="s1")
    high_pipeline = _pipeline(tmp_path, higher)
    high = {str(e["request_id"]) for e in events if high_pipeline.emit(e)}
    assert low < high


def test_the_hash_is_crc32_of_salt_colon_key() -> None:
    """The documented formula, so another language can check itself against these values."""
    assert hash_unit("s1", "req-1") == zlib.crc32(b"s1:req-1") / 2**32
    assert round(hash_unit("", "abc"), 12) == round(zlib.crc32(b":abc") / 2**32, 12)
    assert POLICY.hashed_keep("req-3") == (hash_unit("s1", "req-3") < 0.05)


def test_two_processes_take_the_same_decisions(tmp_path: Path) -> None:
    here = _decisions(_pipeline(tmp_path), _mixed(N))
    code = (
        "import sys; from pathlib import Path; from tests.events.test_sampling import _decisions, _pipeline, _mixed, N;"
        "print(_decisions(_pipeline(Path(sys.argv[1])), _mixed(N)))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # a different str hash: the decision must not depend on it
    other = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "other")], capture_output=True, text=True, env=env, check=True,
        cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert other.stdout.strip() == here


def test_extra_events_of_a_request_share_its_decision(tmp_path: Path) -> None:
    from accord.events.context import RequestState, enter, leave

    pipeline = _pipeline(tmp_path, SamplingPolicy.of(sample_rate=0.5, salt="x"))
    outcomes = set()
    for i in range(200):
        state = RequestState({"request_id": f"r{i}", "status": 200, "duration_ms": 1.0, "route": "/a"}, pipeline)
        token = enter(state)
        pipeline.emit({"step": "one"})
        pipeline.emit({"step": "two"})
        leave(token)
        pipeline.finish_request(state)
        stamped = [e for e in (state.event, *state.extras) if "sampling_rule" in e]
        outcomes.add(len(stamped))
        assert all(e["request_id"] == f"r{i}" for e in stamped)
    assert outcomes == {0, 3}  # all three kept or none


def _accord(*args: str, db_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ACCORD_DB_URL": db_url}
    accord = str(Path(sys.executable).with_name("accord"))
    return subprocess.run([accord, *args], capture_output=True, text=True, env=env)


async def test_a_policy_change_through_accord_config_set_reaches_every_pipeline(
    sqlite_url: str, tmp_path: Path
) -> None:
    first = await start("a", sqlite_url, None, tmp_path / "s1")
    second = await start("b", sqlite_url, None, tmp_path / "s2")
    try:
        before = first.policy.version
        assert second.policy.version == before
        refused = await asyncio.to_thread(_accord, "config", "set", "events.sample_rate", "2", db_url=sqlite_url)
        assert refused.returncode != 0 and "events.sample_rate" in refused.stderr
        done = await asyncio.to_thread(_accord, "config", "set", "events.sample_rate", "1", db_url=sqlite_url)
        assert done.returncode == 0, done.stderr

        async def both_changed() -> bool:
            return first.policy.sample_rate == 1.0 and second.policy.sample_rate == 1.0

        await wait_for(both_changed, within=30, what="both pipelines to follow events.sample_rate")
        assert first.policy.version == second.policy.version != before
    finally:
        await first.aclose()
        await second.aclose()


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_a_policy_outside_its_rules_is_refused(rate: float) -> None:
    with pytest.raises(Exception, match="sample_rate"):
        SamplingPolicy.of(sample_rate=rate)
