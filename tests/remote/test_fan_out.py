"""The server's fan-out on a real LiveConfig (SQLite): a stream past its queue is told to resync, others go on."""

from __future__ import annotations

import accord
from accord import Setting, SettingsGroup
from accord.server.routes.remote_stream import FanOut


class Knob(SettingsGroup, category="knob"):
    level: int = Setting(0)


async def test_a_slow_stream_is_told_to_resync_and_never_holds_back_the_others(sqlite_url: str) -> None:
    async with await accord.connect(sqlite_url, "", groups=[Knob], watch=False, announce=False) as live:
        hub = FanOut(live)
        try:
            slow = hub.subscribe(("config/",), limit=3)
            fast = hub.subscribe(("config/",), limit=100)
            elsewhere = hub.subscribe(("env/",), limit=3)
            written = [(await live.set("knob.level", level)).mod_revision for level in range(1, 6)]
        finally:
            await hub.aclose()
    assert slow.resync is not None and "3 changes behind" in slow.resync
    assert list(slow.items) == []  # cleared: the client catches up from history instead
    assert [change.revision for _after, change in fast.items] == written
    assert [after for after, _change in fast.items][1:] == written[:-1]  # each names the one before it
    assert elsewhere.resync is None and not elsewhere.items  # not woken for keys outside its prefixes
