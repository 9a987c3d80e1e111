"""Get-or-create and look-up of mappings, as the vault asks for them: batched, sealed, and briefly held.

Where mappings live (the database alone, or Redis over it) is the backend's business
(accord.vault.backends); here the originals are sealed and opened, concurrent calls of the process
share batches, and recently confirmed originals are held in memory for a moment.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from accord.vault.backends import MappingBackend
from accord.vault.hot import HotOriginals
from accord.vault.records import Item
from accord.vault.sealing import Sealer
from accord.vault.types import VaultError

__all__ = ["Mappings", "Resolution"]

_BATCHES_IN_FLIGHT = 4  # while some batches wait on the database or Redis, others can go on


@dataclass
class Resolution:
    """What a set of tokens resolved to; ``missing`` includes the ``expired`` ones. The repr hides originals."""

    originals: dict[str, str] = field(default_factory=dict, repr=False)
    missing: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)


class Mappings:
    def __init__(self, backend: MappingBackend, sealer: Sealer, *, hot_tokens: int = 0) -> None:
        self.backend = backend
        self.sealer = sealer
        self.hot = HotOriginals(hot_tokens)
        self._coalescer = _Coalescer(backend.tokens_for)

    async def aclose(self) -> None:
        await self._coalescer.aclose()

    async def tokens_for(self, scope: str, items: Sequence[Item], ttl: int) -> dict[bytes, str]:
        """Every item's token, persisted; concurrent calls of this process are served together."""
        return await self._coalescer.submit(scope, items, ttl)

    async def originals_for(self, scope: str, tokens: Sequence[str], ttl: int) -> Resolution:
        result = Resolution()
        now = time.monotonic()
        for token in tokens:
            original = self.hot.get(scope, token, now)
            if original is not None:
                result.originals[token] = original
        if len(result.originals) == len(tokens):
            return result
        found = await self.backend.lookup(scope, [tok for tok in tokens if tok not in result.originals], ttl)
        for token, blob in found.blobs.items():
            result.originals[token] = self.sealer.open(scope, token, blob)
        result.missing, result.expired = found.missing, found.expired
        for token in found.confirmed:
            self.hot.put(scope, token, result.originals[token], now)
        return result


_Request: TypeAlias = tuple[str, Sequence[Item], int, "asyncio.Future[dict[bytes, str]]"]


class _Coalescer:
    """Concurrent get-or-create calls of one process share script calls and transactions.

    Up to ``_BATCHES_IN_FLIGHT`` batches run at once; a call that arrives while all of them are busy
    waits for the next batch, which takes every call queued by then: one GET_OR_CREATE, one insert
    and one publish per scope, not one of each per call. A call that arrives when a batch slot is
    free is served at once.
    """

    def __init__(self, run: Callable[[str, Sequence[Item], int], Awaitable[dict[bytes, str]]]) -> None:
        self._run = run
        self._queue: list[_Request] = []
        self._drains: set[asyncio.Task[None]] = set()

    async def submit(self, scope: str, items: Sequence[Item], ttl: int) -> dict[bytes, str]:
        future: asyncio.Future[dict[bytes, str]] = asyncio.get_running_loop().create_future()
        self._queue.append((scope, items, ttl, future))
        if len(self._drains) < _BATCHES_IN_FLIGHT:
            drain = asyncio.create_task(self._drain_queue(), name="accord-vault-batch")
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        return await future

    async def _drain_queue(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            groups: dict[tuple[str, int], list[_Request]] = collections.defaultdict(list)
            for request in batch:
                groups[(request[0], request[2])].append(request)
            for (scope, ttl), requests in groups.items():
                await self._serve(scope, ttl, requests)

    async def _serve(self, scope: str, ttl: int, requests: list[_Request]) -> None:
        merged = {item.field: item for _, items, _, _ in requests for item in items}
        try:
            tokens = await self._run(scope, list(merged.values()), ttl)
        except Exception as exc:  # every waiter of the batch learns why; the next batch still runs
            _fail(requests, exc)
            return
        except BaseException:
            _fail(requests, VaultError("the vault was closed"))
            raise
        for _, items, _, future in requests:
            if not future.done():
                future.set_result({item.field: tokens[item.field] for item in items})

    async def aclose(self) -> None:
        for drain in list(self._drains):
            drain.cancel()
            with contextlib.suppress(BaseException):
                await drain
        _fail(self._queue, VaultError("the vault was closed"))
        self._queue = []


def _fail(requests: Sequence[_Request], exc: BaseException) -> None:
    for *_, future in requests:
        if not future.done():
            future.set_exception(exc)
