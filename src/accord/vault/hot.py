"""Recently confirmed originals, held in memory for a moment so a stream's repeated tokens cost nothing."""

from __future__ import annotations

import collections

__all__ = ["HotOriginals"]


class HotOriginals:
    """token -> original for tokens Redis or the database confirmed live less than ``hold`` seconds ago.

    Unmasking the same tokens again and again (a stream's deltas, a chat's turns) then needs no round
    trip. A mapping confirmed live cannot expire within ``hold`` (expiry needs it idle for the whole
    retention; a tenth of it at most is held here), and this vault's own sweep clears the cache. Uses
    served from here are not recorded, so Redis' record of a token's last use lags by up to ``hold``.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.hold = 1.0
        self._entries: collections.OrderedDict[tuple[str, str], tuple[str, float]] = collections.OrderedDict()

    def get(self, scope: str, token: str, now: float) -> str | None:
        entry = self._entries.get((scope, token))
        if entry is None or now - entry[1] > self.hold:
            return None
        return entry[0]

    def put(self, scope: str, token: str, original: str, now: float) -> None:
        if self.size <= 0:
            return
        self._entries[(scope, token)] = (original, now)
        self._entries.move_to_end((scope, token))
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
