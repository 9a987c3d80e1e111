"""Added latency of `accord proxy` over a direct call to the same local upstream (4 KiB prompt by default).

Starts the echo upstream used by the tests and one `accord proxy` (PostgreSQL + Redis), then sends
the same non-streaming OpenAI request directly and through the proxy, interleaved call by call so
both share whatever else the machine is doing. Overhead = proxy percentile - direct percentile.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import time
from typing import Any

import httpx

from _common import ROOT, emit, machine, note, parser, runs_and_overall, services

sys.path.insert(0, str(ROOT))
from tests.proxy.proxy_harness import Processes, openai_body

CASES = (("clean", False), ("1pct_sensitive", True))
SENTENCE = "The deployment pipeline reported latency regressions in the ingest service after the rollout. "


def prompt(sensitive: bool, size: int = 4096) -> str:
    """About 1% sensitive characters when ``sensitive``: an EKS ARN, an email and an IP every ~3 KiB."""
    text, i = "", 0
    while len(text) < size:
        text += SENTENCE
        if sensitive and i % 30 == 0:
            text += f"See arn:aws:eks:us-east-1:123456789012:cluster/c{i % 3}, ops{i % 4}@example.com, 10.0.0.{i % 5}. "
        i += 1
    return text[:size]


def measure(
    client: httpx.Client, direct: str, proxied: str, body: dict[str, Any], calls: int
) -> tuple[list[float], list[float]]:
    for _ in range(20):
        client.post(direct, json=body).raise_for_status()
        client.post(proxied, json=body).raise_for_status()
    d: list[float] = []
    p: list[float] = []
    for _ in range(calls):
        for url, sink in ((direct, d), (proxied, p)):
            started = time.perf_counter()
            client.post(url, json=body).raise_for_status()
            sink.append((time.perf_counter() - started) * 1000)
    return d, p


async def main() -> None:
    args = parser(__doc__.splitlines()[0], db_name="accord_bench_proxy")
    args.add_argument("--calls", type=int, default=300, help="calls per run and per path")
    args.add_argument("--sizes", default="4096", help="prompt sizes in characters, comma-separated (e.g. 4096,65536)")
    opts = args.parse_args()
    sizes = [int(size) for size in opts.sizes.split(",")]
    os.environ.setdefault("ACCORD_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())  # a scratch vault's key
    async with services(opts) as found:
        procs = Processes(found.workdir)
        try:
            upstream = procs.upstream()
            proxy = procs.proxy(upstream.url, found.db_url, found.redis_url)
            results: dict[str, Any] = {}
            cases = [(size, label, sensitive) for size in sizes for label, sensitive in CASES]
            with httpx.Client(timeout=30) as client:
                for size, kind, sensitive in cases:
                    label = kind if size == 4096 else f"{kind}_{size // 1024}k"
                    body = openai_body(prompt(sensitive, size), stream=False)
                    direct_runs, proxy_runs = [], []
                    for run in range(opts.runs):
                        note(f"{label}: run {run + 1}/{opts.runs}")
                        d, p = measure(
                            client,
                            upstream.url + "/v1/chat/completions",
                            proxy.url + "/v1/chat/completions",
                            body,
                            opts.calls,
                        )
                        direct_runs.append(d)
                        proxy_runs.append(p)
                    results[label] = _compare(direct_runs, proxy_runs)
        finally:
            procs.close()
        report = {"benchmark": "proxy_overhead", "unit": "ms per call", "machine": machine(found), "results": results}
    lines = [
        f"{k}: overhead p50 {v['overhead_p50_ms']} ms, p99 {v['overhead_p99_ms']} ms (target p99 <= 0.5 ms)"
        for k, v in results.items()
    ]
    emit(report, lines)


def _compare(direct_runs: list[list[float]], proxy_runs: list[list[float]]) -> dict[str, Any]:
    direct, proxied = runs_and_overall(direct_runs), runs_and_overall(proxy_runs)
    p50 = round(proxied["median_of_run_medians"] - direct["median_of_run_medians"], 3)
    p99 = round(proxied["median_of_run_p99s"] - direct["median_of_run_p99s"], 3)
    return {"direct": direct, "proxy": proxied, "overhead_p50_ms": p50, "overhead_p99_ms": p99}


if __name__ == "__main__":
    asyncio.run(main())
