"""A remote client as its own process, for the fleet tests: ``python fleet_client.py`` with ACCORD_ADDR and
ACCORD_TOKEN set. It prints ``ready <instance id>`` once connected and announced, then idles."""

from __future__ import annotations

import asyncio
import sys

import accord
from accord import Setting, SettingsGroup


class Feature(SettingsGroup, category="feature"):
    enabled: bool = Setting(False)
    level: int = Setting(0)


async def main() -> None:
    async with await accord.connect(groups=[Feature], start_timeout=20) as cfg:
        assert cfg.announcer is not None, "a remote client announces itself"
        sys.stdout.write(f"ready {cfg.announcer.id}\n")
        sys.stdout.flush()
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
