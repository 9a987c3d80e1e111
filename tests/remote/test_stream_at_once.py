"""The change stream's short paths on a real `accord serve`: the server writes a live change straight to the
stream's connection from its fan-out, and the client applies it in the socket's read callback. Both fall
back to their tasks when they must (a schema change needs the server's confirmation; a queue already
holds events); either way every revision arrives once and in order.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

import accord
from accord import Setting, SettingsGroup
from accord.remote.stream import RemoteStreamBus
from tests.harness.accord_server import AccordServers

WRITES = 30


class Knob(SettingsGroup, category="knob"):
    level: int = Setting(0)


class Later(SettingsGroup, category="later"):
    name: str = Setting("")


def _changes_at_once(metrics: str) -> tuple[float, float]:
    found = dict(re.findall(r'^accord_remote_stream_changes_total\{path="(\w+)"\} (\S+)$', metrics, re.MULTILINE))
    return float(found["at_once"]), float(found["queued"])


async def test_changes_take_the_short_paths_and_a_schema_change_the_long_one_all_in_order(
    accord_servers: AccordServers, sqlite_url: str
) -> None:
    server = accord_servers.start(sqlite_url, "", expect_token=True)
    assert server.token is not None
    async with await accord.connect(addr=server.addr, token=server.token, groups=[Knob]) as cfg:
        levels: list[int] = []
        arrived = asyncio.Event()

        def record(change: Any) -> None:
            levels.append(int(change.new))
            arrived.set()

        cfg.on_change("knob.", record)
        headers = {"Authorization": f"Bearer {server.token}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as admin:
            for level in range(1, WRITES + 1):
                if level == WRITES // 2:  # another process registers a schema: its change needs confirmation
                    async with await accord.connect(addr=server.addr, token=server.token, groups=[Later], watch=False):
                        pass
                arrived.clear()
                answer = await admin.put("/api/config/knob.level", json={"value": level})
                assert answer.status_code == 200, answer.text
                async with asyncio.timeout(10):
                    await arrived.wait()
            at_once, queued = _changes_at_once((await admin.get("/metrics")).text)
        bus = cfg.replica._propagation.bus
        assert isinstance(bus, RemoteStreamBus)
        assert levels == list(range(1, WRITES + 1))  # each once, in order
        assert cfg.entry("schema/later.name") is not None  # the confirmed schema change arrived too
        assert bus.resyncs == 0 and bus.reconnects == 0
        assert bus.applied_at_once >= 1, "no event was applied in the client's read callback"
        assert at_once >= 1, "the server wrote no change straight to a stream"
        assert at_once + queued >= WRITES
