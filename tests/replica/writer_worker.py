"""Child of the concurrent-writer test: `python writer_worker.py DB_URL REDIS_URL INDEX COUNT [PARK_AT]`.

Writes COUNT changes to its own keys through a Replica (so they are announced as a service's are),
printing ``writing <n>`` just before each write and ``done`` at the end. A Redis URL of "-" means none.
With PARK_AT, it waits to be killed once write PARK_AT has returned: the parent's SIGKILL, sent when it
reads ``writing PARK_AT``, then lands during that write or just after it, however slowly the parent reads.
"""

from __future__ import annotations

import asyncio
import sys

from accord.replica.replica import Replica
from accord.store.types import PutItem


async def main(db_url: str, redis_url: str, index: int, count: int, park_at: int) -> None:
    replica = await Replica.from_url(
        db_url, "" if redis_url == "-" else redis_url, prefixes=["w/"], actor=f"writer-{index}", watch=False
    )
    try:
        for n in range(count):
            print(f"writing {n}", flush=True)
            await replica.put_keys([PutItem(f"w/{index}/k{n % 4}", f"{index}:{n}".encode())])
            if n == park_at:
                await asyncio.Event().wait()
        print("done", flush=True)
    finally:
        await replica.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int((sys.argv[5:] or ["-1"])[0])))
