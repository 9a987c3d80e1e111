"""Remote mode's upper stage: batches POSTed to an accord server, which relays them into its own stages.

``POST /api/events`` with the prepared events, one JSON object per line (``application/x-ndjson``),
at most ``MAX_REQUEST_BYTES`` a request (under the server's 1 MiB body limit: a batch is split). The
server answers 200 only once the batch is in its Redis stream, its table or its spool file, so a 200
means the events are safe. Any other outcome — no server answers, a timeout, a 5xx, a refused token —
fails the stage, and the pipeline spools the batch and replays it later. A batch cut off after some of
its requests went through is spooled whole: duplicates, never gaps (the table's key absorbs them).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import httpx

from accord.events.redis_stage import StageFailedError
from accord.remote.servers import Servers, parse_addresses, shown_addr

__all__ = ["MAX_REQUEST_BYTES", "PATH", "ServerStage"]

PATH = "/api/events"
MAX_REQUEST_BYTES = 960 * 1024
TIMEOUT = httpx.Timeout(5.0, connect=1.0)  # a stage that fails fast: the spool is the next stop
_FAILOVER = (404, 502, 503, 504)  # 404: that server runs without --events (no relay); another may have one


def chunks(payloads: Sequence[bytes], limit: int = MAX_REQUEST_BYTES) -> Iterator[list[bytes]]:
    """Consecutive runs of payloads whose newline-joined size stays within ``limit`` (one event at least)."""
    run: list[bytes] = []
    size = 0
    for payload in payloads:
        if run and size + len(payload) + 1 > limit:
            yield run
            run, size = [], 0
        run.append(payload)
        size += len(payload) + 1
    if run:
        yield run


class ServerStage:
    def __init__(self, addr: str | Sequence[str], token: str) -> None:
        self.servers = Servers(parse_addresses(addr), token)

    @property
    def shown(self) -> str:
        return self.servers.shown

    async def deliver(self, payloads: list[bytes]) -> None:
        for run in chunks(payloads):
            await self._post(b"\n".join(run))

    async def _post(self, body: bytes) -> None:
        servers = self.servers
        reasons: list[str] = []
        for _ in servers.addresses:
            base = servers.base
            try:
                response = await servers.client.post(
                    base + PATH, content=body, headers={"Content-Type": "application/x-ndjson"}, timeout=TIMEOUT
                )
            except httpx.TransportError as exc:
                reasons.append(f"{shown_addr(base)}: {type(exc).__name__}")
                servers.fail_over()
                continue
            if response.status_code in _FAILOVER:  # this one cannot relay (no --events, or not now)
                reasons.append(f"{shown_addr(base)}: {servers.error(response).detail}")
                servers.fail_over()
                continue
            if response.is_error:
                raise StageFailedError(f"{shown_addr(base)} refused the events: {servers.error(response).detail}")
            return
        raise StageFailedError(f"no accord server took the events ({'; '.join(reasons)})")

    async def aclose(self) -> None:
        await self.servers.aclose()
