"""Child of the SQLite writers test: `python sqlite_writer_worker.py DB_URL INDEX ROUNDS`.

Each round: a put of one of its own keys, a compare-and-set that must miss, one increment of the shared
counter (read, then compare-and-set, again after a miss), a mixed batch (put and delete) every third round, and a
timer armed through ``write_tx`` (the other writer path of the same process and file). It prints one JSON
line at the end: every revision it was given, the misses it saw and the increments it made.
"""

from __future__ import annotations

import asyncio
import json
import sys

from accord.core.errors import ConflictError
from accord.store.kv import SqlKVStore
from accord.store.types import DeleteItem, PutItem

COUNTER = "shared/counter"


async def _increment(store: SqlKVStore, revisions: list[int]) -> int:
    """Read-increment-CAS until it lands; the number of misses on the way."""
    misses = 0
    while True:
        entry = await store.get(COUNTER)
        value, version = (int(entry.value), entry.version) if entry else (0, 0)
        try:
            change = await store.put(COUNTER, str(value + 1).encode(), expect_version=version)
        except ConflictError:
            misses += 1
            continue
        revisions.append(change.revision)
        return misses


async def main(db_url: str, index: int, rounds: int) -> None:
    revisions: list[int] = []
    missed = counter_misses = 0
    async with await SqlKVStore.from_url(db_url, migrate=False) as store:
        timers = store.timers()
        for n in range(rounds):
            revisions.append((await store.put(f"own/{index}/k{n % 4}", f"{index}:{n}".encode())).revision)
            try:
                await store.put(f"own/{index}/k0", b"never", expect_version=10_000)
            except ConflictError:
                missed += 1
            counter_misses += await _increment(store, revisions)
            if n % 3 == 2:
                batch = [PutItem(f"own/{index}/tmp", b"t"), DeleteItem(f"own/{index}/tmp")]
                revisions.extend(change.revision for change in await store.write_batch(batch))
            await timers.arm(f"w{index}", 60)
    print(json.dumps({"revisions": revisions, "missed": missed, "counter_misses": counter_misses}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
