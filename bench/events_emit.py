"""The request-path cost of ``Pipeline.emit`` beside deque.append, stdlib logging (JSON) and structlog.

Each run times every call on its own (perf_counter_ns around one call, minus the median cost of timing
an empty call) for median and p99, and a tight loop of the same calls for the batched mean. All
candidates run in the same process and the same run, interleaved, so load on the machine hits them
alike. The event is the wide event a middleware holds at the end of a request (10 fields); the policy
keeps 5% by hash, so most calls take the sampled-out path, as in production.

    .venv/bin/python bench/events_emit.py --runs 5 > bench/results/events_emit.json
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import emit, machine, runs_and_overall

from accord.events import Pipeline, PipelineOptions, SamplingPolicy

Call = Callable[[dict[str, Any]], object]


def _event(i: int) -> dict[str, Any]:
    return {
        "request_id": os.urandom(16).hex(),
        "method": "GET",
        "route": "/items/{item}",
        "status": 500 if i % 50 == 0 else 200,
        "duration_ms": 12.5,
        "error_type": None,
        "error_message": None,
        "item": str(i),
        "user": "u-17",
        "cart_size": 3,
    }


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"msg": record.getMessage(), "level": record.levelname, **getattr(record, "event", {})})


def _candidates(tmp: Path) -> dict[str, tuple[Call, Callable[[], None]]]:
    sink: collections.deque[dict[str, Any]] = collections.deque()
    pipeline = Pipeline(
        "bench",
        policy=SamplingPolicy.of(sample_rate=0.05, salt="b"),
        spool_dir=tmp / "spool",
        options=PipelineOptions(buffer_events=10_000_000),
    )
    logger = logging.getLogger("bench.events")
    logger.propagate = False
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    found: dict[str, tuple[Call, Callable[[], None]]] = {
        "deque.append": (sink.append, sink.clear),
        "Pipeline.emit": (pipeline.emit, lambda: pipeline._buffer.take(10_000_000)),
        "stdlib logger.info (JSON formatter)": (
            lambda e: logger.info("request", extra={"event": e}),
            lambda: handler.setStream(io.StringIO()),
        ),
    }
    try:
        import structlog
    except ImportError:
        return found
    out = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        logger_factory=structlog.WriteLoggerFactory(out),
        cache_logger_on_first_use=True,
    )
    bound = structlog.get_logger()
    found["structlog info (JSONRenderer)"] = (
        lambda e: bound.info("request", **e),
        lambda: (out.seek(0), out.truncate()),
    )
    return found


def _timer_overhead(n: int) -> float:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(n):
        t0 = clock()
        samples.append(clock() - t0)
    return statistics.median(samples)


def _single(call: Call, events: list[dict[str, Any]], overhead: float) -> list[float]:
    clock = time.perf_counter_ns
    samples = []
    for event in events:
        t0 = clock()
        call(event)
        samples.append(max(0.0, (clock() - t0 - overhead) / 1000.0))
    return samples


def _batched(call: Call, events: list[dict[str, Any]]) -> float:
    t0 = time.perf_counter_ns()
    for event in events:
        call(event)
    return (time.perf_counter_ns() - t0) / len(events) / 1000.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--calls", type=int, default=20_000)
    args = p.parse_args()
    events = [_event(i) for i in range(args.calls)]
    with tempfile.TemporaryDirectory() as tmp:
        candidates = _candidates(Path(tmp))
        singles: dict[str, list[list[float]]] = {name: [] for name in candidates}
        batched: dict[str, list[float]] = {name: [] for name in candidates}
        for _ in range(args.runs):
            overhead = _timer_overhead(5000)
            for name, (call, reset) in candidates.items():
                fresh = [dict(e) for e in events]
                singles[name].append(_single(call, fresh, overhead))
                reset()
                fresh = [dict(e) for e in events]
                batched[name].append(_batched(call, fresh))
                reset()
    results = {
        name: runs_and_overall(singles[name]) | {"batched_mean_us_per_run": [round(b, 3) for b in batched[name]]}
        for name in candidates
    }
    base = results["stdlib logger.info (JSON formatter)"]["median_of_run_medians"]
    lines = []
    for name, r in results.items():
        ratio = r["median_of_run_medians"] / base if base else float("nan")
        r["median_ratio_to_stdlib"] = round(ratio, 3)
        lines.append(
            f"{name:40s} median {r['median_of_run_medians']:.3f} µs  p99 {r['median_of_run_p99s']:.3f} µs  "
            f"batched {statistics.median(r['batched_mean_us_per_run']):.3f} µs  ({ratio:.3f}x stdlib)"
        )
    emit(
        {"benchmark": "events_emit", "calls": args.calls, "runs": args.runs, "results": results, "machine": machine()},
        lines,
    )


if __name__ == "__main__":
    main()
