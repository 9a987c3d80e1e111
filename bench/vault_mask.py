"""Vault throughput in MB/s: mask on clean text and on text with 1% sensitive content, and unmask.

The texts are generated (deterministic, ASCII, so MB = 10^6 characters = bytes):

``prose``  clean English-like prose; words that context detectors key on ("token", "account",
           "secret", "owner", "session", "key", "access") come up about once per 1,000 words each.
``mixed``  clean prose, Python code and log lines: many colons, dots between digits, ``name_123``
           identifiers and timestamps, which the IP and token detectors must look at and reject.
``sensitive``  ``mixed`` with 1% of its characters replaced by values from a pool of originals
           (ARNs of three types, emails, IPv4 addresses, S3 URIs, access key ids), each value
           appearing several times, as a resource does in a conversation.

Figures, per call (``--calls`` calls per run and text, after warm-up calls):

``detect``  ``DetectorSet.detect`` alone: the CPU work of masking without the store.
``mask``    ``Vault.mask`` on PostgreSQL + Redis. The sensitive text's originals already have tokens
            (the steady state; allocating new tokens is bench/vault_alloc.py's subject).
``unmask_hot``  ``Vault.unmask`` of the masked sensitive text, tokens served from the in-process cache
            of recently confirmed tokens (a vault unmasking the same tokens within a second).
``unmask_cold`` the same with ``hot_tokens=0``: every call resolves its tokens in Redis (one script).
``re_email`` (baseline) one ``re.finditer`` of a plain email regex over the same text: what one
            typical hand-written detector costs (it starts with a character class, so the regex
            engine tries it at every position).
``re_unmask`` (baseline) ``re.sub`` of one compiled alternation of the text's tokens with a dict of
            originals: unmasking with no store, no token grammar and no checks.

MB/s is the text size over the median call time; the CPU figure uses the process's CPU time, which
the machine's other load disturbs less than the wall clock.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BenchError, Services, emit, machine, note, parser, runs_and_overall, services
from accord.vault import BUILTIN_DETECTORS, DetectorSet, Vault

TARGET_MASK_MB_S = 50.0
TARGET_UNMASK_MB_S = 200.0
MB = 1_000_000
_VOCABULARY = (
    "the of and to in is for that on with as it be by this are from or at an not we can will you your all "
    "have has was were which their they more when if one into about other than then there these some time "
    "service request response cluster deploy deployment model endpoint region bucket role function config value "
    "error retry timeout latency queue worker instance replica node image build test release version user customer "
    "order invoice payment cache database index table column row migration schema query result report team "
    "please check could would should need want help issue problem change update create delete list show run start "
    "stop restart scale memory disk network traffic load balancer health metric alert log trace span budget cost "
    "policy permission"
)
# Words the context detectors key on: each about 1 word in 1,000, far more often than in general English.
_KEYWORDS = ("token", "account", "secret", "owner", "session", "key", "access")
WORDS = tuple(_VOCABULARY.split())
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


# ----- texts -------------------------------------------------------------------------------------


def _prose(rng: random.Random, sentences: int) -> str:
    out = []
    for _ in range(sentences):
        words = " ".join(
            rng.choice(_KEYWORDS) if rng.random() < 0.007 else rng.choice(WORDS) for _ in range(rng.randint(6, 18))
        )
        out.append(words.capitalize() + rng.choice(".....?:,"))
    return " ".join(out) + "\n\n"


def _code(rng: random.Random) -> str:
    v = rng.randint(0, 999)
    return (
        f"    def handle_{v}(self, request: Request) -> Response:\n"
        f"        timeout = self.config.get('timeout_ms', {v}) / 1000.0\n"
        f"        items = request.items[{v % 7}:{v % 11}]\n"
        f"        if len(items) > {v} and self._cache_{v % 5}:\n"
        f"            return Response(status=200, body={{'count': len(items), 'ratio': {v / 7:.3f}}})\n"
        f'        @property\n        def name(self) -> str:\n            return f"worker_{{self.index}}"\n'
    )


def _log(rng: random.Random) -> str:
    v = rng.randint(0, 99999)
    day, hour, minute = rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59)
    return (
        f"2024-05-{day:02d}T{hour:02d}:{minute:02d}:{v % 60:02d}.{v % 1000:03d}Z INFO worker[{v % 16}] "
        f"request_id=req-{v:05d} path=/api/v1/orders/{v} status=200 "
        f"took={v / 1000:.2f}ms size={v * 3} version=1.{v % 9}.{v % 13}\n"
    )


def clean_text(kind: str, size: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < size:
        pick = rng.random() if kind == "mixed" else 0.0
        if pick < 0.5:
            part = _prose(rng, rng.randint(2, 6))
        elif pick < 0.75:
            part = _code(rng)
        else:
            part = "".join(_log(rng) for _ in range(rng.randint(2, 8)))
        parts.append(part)
        total += len(part)
    return "".join(parts)[:size]


def originals(count: int) -> list[str]:
    kinds: list[Callable[[int], str]] = [
        lambda i: f"arn:aws:eks:us-east-1:1234567890{i % 100:02d}:cluster/prod-{i}",
        lambda i: f"arn:aws:iam::2100000000{i % 100:02d}:role/app-{i}",
        lambda i: f"user{i}@corp.example.com",
        lambda i: f"10.{i // 250 % 250}.{i % 250}.{7 + i % 200}",
        lambda i: f"s3://bucket-{i}/data/file-{i}.csv",
        lambda i: "AKIA" + f"{i:016d}".translate(str.maketrans("0123456789", "QWERTYUPAS")),
        lambda i: f"arn:aws:sagemaker:eu-west-1:3100000000{i % 100:02d}:endpoint/ep-{i}",
    ]
    return [kinds[i % len(kinds)](i) for i in range(count)]


def sensitive_text(size: int, fraction: float, pool: int, seed: int = 3) -> str:
    """``mixed`` text with values inserted at word boundaries until they make up ``fraction`` of it."""
    rng = random.Random(seed)
    values = originals(pool)
    base = clean_text("mixed", size, seed)
    budget = int(size * fraction)
    cuts = sorted(rng.sample(range(size), int(budget / (sum(map(len, values)) / len(values)))))
    out: list[str] = []
    position = 0
    for cut in cuts:
        space = base.find(" ", cut)
        if space < position:
            continue
        out += [base[position : space + 1], rng.choice(values), " "]
        position = space + 1
    out.append(base[position:])
    return "".join(out)


# ----- measuring ---------------------------------------------------------------------------------


async def _calls(call: Callable[[], Awaitable[object]], count: int, warmup: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``count`` calls, after ``warmup`` unmeasured ones."""
    for _ in range(warmup):
        await call()
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(count):
        c0, w0 = time.process_time(), time.perf_counter()
        await call()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def _sync(function: Callable[[], object]) -> Callable[[], Awaitable[object]]:
    async def call() -> object:
        return function()

    return call


class Case:
    """One figure: what is called, on how many characters, across runs."""

    def __init__(self, name: str, text_kind: str, size: int, call: Callable[[], Awaitable[object]]) -> None:
        self.name, self.text_kind, self.size, self.call = name, text_kind, size, call
        self.wall_ms: list[list[float]] = []
        self.cpu_ms: list[list[float]] = []

    async def run(self, count: int, warmup: int) -> None:
        wall, cpu = await _calls(self.call, count, warmup)
        self.wall_ms.append([s * 1e3 for s in wall])
        self.cpu_ms.append([s * 1e3 for s in cpu])

    def mb_per_s(self, ms: float) -> float:
        return round(self.size / MB / (ms / 1e3), 1) if ms > 0 else float("inf")

    def report(self) -> dict[str, Any]:
        wall = runs_and_overall(self.wall_ms)
        cpu_median = statistics.median(v for run in self.cpu_ms for v in run)
        run_rates = [self.mb_per_s(statistics.median(run)) for run in self.wall_ms]
        return {
            "text": self.text_kind,
            "chars": self.size,
            "mb_per_s": {"runs": run_rates, "median": statistics.median(run_rates)},
            "cpu_mb_per_s": self.mb_per_s(cpu_median),
            "latency_ms": wall,
        }


def _check_round_trip(masked: str, original: str, unmasked: str) -> None:
    if unmasked != original or masked == original:
        raise BenchError("the masked text did not unmask to the original; the figures would be meaningless")


async def build_cases(vaults: tuple[Vault, Vault], texts: dict[str, str], size_label: str) -> list[Case]:
    hot, cold = vaults
    detectors = DetectorSet(BUILTIN_DETECTORS)
    sensitive = texts["sensitive"]
    masked = await hot.mask(sensitive)  # allocates the pool's tokens: the measured calls find them
    _check_round_trip(masked.text, sensitive, await hot.unmask(masked.text))
    _check_round_trip(masked.text, sensitive, await cold.unmask(masked.text))
    for kind in ("prose", "mixed"):
        if (await hot.mask(texts[kind])).mappings:
            raise BenchError(f"the clean {kind} text has detections; it is not clean")
    alternation = re.compile("|".join(sorted(map(re.escape, masked.mappings), key=len, reverse=True)))
    mappings = masked.mappings
    cases = []
    for kind in ("prose", "mixed", "sensitive"):
        text = texts[kind]
        cases += [
            Case(f"{size_label}/detect/{kind}", kind, len(text), _sync(lambda t=text: detectors.detect(t))),
            Case(f"{size_label}/mask/{kind}", kind, len(text), lambda t=text: hot.mask(t)),
            Case(f"{size_label}/re_email/{kind}", kind, len(text), _sync(lambda t=text: list(EMAIL_RE.finditer(t)))),
        ]
    cases += [
        Case(f"{size_label}/unmask_hot/masked", "masked", len(masked.text), lambda: hot.unmask(masked.text)),
        Case(f"{size_label}/unmask_cold/masked", "masked", len(masked.text), lambda: cold.unmask(masked.text)),
        Case(
            f"{size_label}/re_unmask/masked",
            "masked",
            len(masked.text),
            _sync(lambda: alternation.sub(lambda m: mappings[m.group()], masked.text)),
        ),
    ]
    return cases


def _size(value: str) -> int:
    units = {"kib": 1024, "mib": 1024 * 1024, "kb": 1000, "mb": MB}
    lowered = value.lower()
    for unit, factor in units.items():
        if lowered.endswith(unit):
            return int(float(lowered[: -len(unit)]) * factor)
    return int(value)


def _label(size: int) -> str:
    return f"{size // (1024 * 1024)}MiB" if size % (1024 * 1024) == 0 else f"{size // 1024}KiB"


async def main(args: argparse.Namespace) -> None:
    os.environ.setdefault("ACCORD_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    async with services(args) as found:
        hot = await Vault.connect(found.db_url, found.redis_url, sweep=False)
        cold = await Vault.connect(found.db_url, found.redis_url, sweep=False, hot_tokens=0)
        try:
            cases: list[Case] = []
            texts_info: dict[str, Any] = {}
            for size in map(_size, args.sizes):
                texts = {kind: clean_text(kind, size) for kind in ("prose", "mixed")}
                texts["sensitive"] = sensitive_text(size, args.fraction, args.pool)
                texts_info[_label(size)] = {kind: {"chars": len(text)} for kind, text in texts.items()}
                cases += await build_cases((hot, cold), texts, _label(size))
            for run in range(args.runs):
                for case in cases:
                    # small texts take little time per call: more calls, so the p99 means something
                    await case.run(args.calls * (1 if case.size >= 256 * 1024 else 20), args.warmup)
                note(f"run {run + 1}/{args.runs} done")
        finally:
            await hot.aclose()
            await cold.aclose()
        report(args, found, cases, texts_info)


def report(args: argparse.Namespace, found: Services, cases: list[Case], texts: dict[str, Any]) -> None:
    results = {case.name: case.report() for case in cases}
    lines = [f"{'figure':34} {'MB/s':>8} {'CPU MB/s':>9} {'p50 ms':>8} {'p99 ms':>8}"]
    for name, figures in results.items():
        latency = figures["latency_ms"]["overall"]
        lines.append(
            f"{name:34} {figures['mb_per_s']['median']:8.1f} {figures['cpu_mb_per_s']:9.1f} "
            f"{latency['median']:8.3f} {latency['p99']:8.3f}"
        )
    verdict: dict[str, Any] = {}
    for label in texts:
        for kind in ("prose", "mixed"):
            rate = results[f"{label}/mask/{kind}"]["mb_per_s"]["median"]
            met = rate >= TARGET_MASK_MB_S
            verdict[f"{label}/mask/{kind}"] = {"mb_per_s": rate, "target": TARGET_MASK_MB_S, "met": met}
        for path in ("unmask_hot", "unmask_cold"):
            rate = results[f"{label}/{path}/masked"]["mb_per_s"]["median"]
            met = rate >= TARGET_UNMASK_MB_S
            verdict[f"{label}/{path}"] = {"mb_per_s": rate, "target": TARGET_UNMASK_MB_S, "met": met}
    lines += [
        f"target {name}: {v['mb_per_s']} MB/s vs {v['target']:g}: {'met' if v['met'] else 'MISSED'}"
        for name, v in verdict.items()
    ]
    emit(
        {
            "benchmark": "vault_mask",
            "unit": "MB/s (10^6 characters of ASCII text per second); latency in ms per call",
            "machine": machine(found),
            "parameters": {k: v for k, v in vars(args).items() if k not in ("db_url", "redis_url")},
            "texts": texts,
            "results": results,
            "targets": verdict,
        },
        lines,
    )


def cli() -> argparse.Namespace:
    p = parser(__doc__.splitlines()[0], db_name="accord_bench_vault")
    p.set_defaults(redis_url="redis://127.0.0.1:6379/14")
    p.add_argument("--sizes", nargs="+", default=["1MiB", "4KiB"], help="text sizes (e.g. 1MiB 64KiB 4KiB)")
    p.add_argument("--calls", type=int, default=15, help="measured calls per run, text and figure")
    p.add_argument("--warmup", type=int, default=2, help="unmeasured calls before each figure's measured ones")
    p.add_argument(
        "--fraction", type=float, default=0.01, help="share of the sensitive text's characters that are values"
    )
    p.add_argument("--pool", type=int, default=200, help="distinct originals the sensitive text draws from")
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(cli()))
