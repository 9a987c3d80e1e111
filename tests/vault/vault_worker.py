"""One OS process of the multi-process vault tests: many mask calls against a shared vault, results as JSON.

Run as ``python vault_worker.py CONFIG.json``. Every process draws from the same pools with its own
seed, so originals are first seen by several processes at once, throughout the run.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from accord.vault import Sequences, Vault


def shared_pool(size: int) -> list[str]:
    kinds = [
        lambda i: f"arn:aws:eks:us-east-1:1234567890{i % 100:02d}:cluster/prod-{i}",
        lambda i: f"arn:aws:iam::2100000000{i % 100:02d}:role/app-{i}",
        lambda i: f"user{i}@shared.example.com",
        lambda i: f"10.{i // 250 % 250}.{i % 250}.{7 + i % 200}",
        lambda i: f"s3://bucket-{i}/data/file-{i}.csv",
        lambda i: f"arn:aws:sagemaker:eu-west-1:3100000000{i % 100:02d}:endpoint/ep-{i}",
    ]
    return [kinds[i % len(kinds)](i) for i in range(size)]


def late_original(k: int) -> str:
    """Originals that appear progressively, so numbers are still being allocated late in the run."""
    return f"late{k}@late.example.com" if k % 2 else f"arn:aws:eks:us-west-2:999900000000:cluster/late-{k}"


async def run(config: dict[str, Any]) -> dict[str, Any]:
    pool = shared_pool(int(config["pool"]))
    rng = random.Random(int(config["seed"]))
    progress = Path(str(config["progress"]))
    seen: dict[str, str] = {}
    conflicts: list[list[str]] = []
    failures: list[str] = []
    started = time.perf_counter()
    vault = await Vault.connect(str(config["db_url"]), str(config["redis_url"]), sweep=False)
    try:
        for call in range(int(config["calls"])):
            chosen = [*rng.sample(pool, int(config["per_call"])), late_original(call // 5)]
            text = "request: " + " ; ".join(chosen) + " -- end"
            result = await vault.mask(text)
            for token, original in result.mappings.items():
                if seen.setdefault(original, token) != token:
                    conflicts.append([original, seen[original], token])
            if call % int(config["unmask_every"]) == 0 and await vault.unmask(result.text) != text:
                failures.append(result.text)
            if call % 100 == 99:
                await asyncio.to_thread(progress.write_text, str(call + 1))
    finally:
        await vault.aclose()
    return {
        "pairs": sorted(seen.items()),
        "conflicts": conflicts,
        "failures": failures,
        "elapsed": time.perf_counter() - started,
    }


async def run_sequences(config: dict[str, Any]) -> dict[str, Any]:
    """``calls`` draws from one sequence, every tenth a batch of five; reports every number received."""
    progress = Path(str(config["progress"]))
    numbers: list[int] = []
    async with await Sequences.connect(str(config["db_url"]), str(config["redis_url"]), lease=25) as seq:
        for call in range(int(config["calls"])):
            if call % 10 == 9:
                numbers += list(await seq.next_many("orders", 5))
            else:
                numbers.append(await seq.next("orders"))
            if call % 50 == 49:
                await asyncio.to_thread(progress.write_text, str(call + 1))
    return {"numbers": numbers}


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    result = asyncio.run(run_sequences(config) if config.get("mode") == "sequences" else run(config))
    Path(str(config["out"])).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
