"""A long-lived instance for the fleet and environment tests: ``python fleet_worker.py DB_URL [REDIS_URL]``.

It connects (announcing itself), prints ``ready <instance id>`` then ``value <knobs.level> <source>``
after each change, flushed, and runs until SIGTERM, when it closes (removing its row).
"""

from __future__ import annotations

import asyncio
import signal
import sys

import accord
from accord import Setting, SettingsGroup


class Knobs(SettingsGroup, category="knobs"):
    level: int = Setting(0, env="FLEET_LEVEL")
    token: str = Setting("", secret=True)


async def main(db_url: str, redis_url: str) -> None:
    live = await accord.connect(db_url, redis_url, groups=[Knobs], check_interval=0.5)
    assert live.announcer is not None
    print("ready", live.announcer.id, flush=True)

    def show(_change: object = None) -> None:
        meta = live.meta("knobs.level")
        print("value", meta.value, meta.source, flush=True)

    show()
    live.on_change("knobs.", show)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await live.aclose()  # removes this instance's row
    print("closed", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""))
