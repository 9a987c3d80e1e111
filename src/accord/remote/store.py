"""A KVStore whose database is an accord server: what a remote client's replica reads and writes through.

Every answer is already filtered by the token's rules on the server. Writes keep ``expect_version`` and
come back with the errors a direct store raises (``ConflictError``, ``ValidationFailedError``, ...), decoded
from the server's error body. What only a process on the database may do (compaction, timers, the bus
key) is refused here with an error saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote

from accord.core.errors import AccordError, NotFoundError
from accord.remote.servers import Servers
from accord.remote.transport import transport_cipher
from accord.remote.wire import change_from_json, change_to_json, entry_from_json, placeholder
from accord.store.types import (
    AuditFilter,
    AuditRow,
    BatchItem,
    Change,
    DeleteItem,
    Deployment,
    Entry,
    PutItem,
    Timers,
    WriteContext,
)

if TYPE_CHECKING:
    from accord.core.crypto import Cipher

API = "/api/remote"


class HttpKVStore:
    """The store role over ``/api/remote`` of one of ``servers`` (docs/remote.md, Protocol)."""

    def __init__(self, servers: Servers) -> None:
        self.servers = servers

    @property
    def url(self) -> str:
        return self.servers.shown

    @property
    def identity(self) -> str:
        return f"remote:{self.servers.shown}"

    def listen_dsn(self) -> str | None:
        return None

    def cipher(self) -> Cipher:
        """The token's transport cipher: the server seals secrets for this token under it."""
        return transport_cipher(self.servers.token)

    async def migrate(self) -> None:
        """Nothing to migrate from here; the call proves a server answers (start-up retries on it)."""
        await self.current_revision()

    async def deployment(self) -> Deployment:
        _refuse("the deployment's bus key")

    async def audit(self, flt: AuditFilter) -> list[AuditRow]:
        _refuse("the audit trail (ask the server's /api/audit)")

    def timers(self) -> Timers:
        _refuse("timers")

    async def compact(self, below_revision: int) -> int:
        _refuse("compaction")

    async def latest_deletes(self, prefix: str) -> dict[str, int]:
        _refuse("tombstones")

    async def current_revision(self) -> int:
        return int((await self.servers.call("GET", f"{API}/revision"))["revision"])

    async def get(self, key: str) -> Entry | None:
        try:
            body = await self.servers.call("GET", f"{API}/keys/{_seg(key)}")
        except NotFoundError:
            return None
        return entry_from_json(body)

    async def snapshot(self, prefix: str | Sequence[str] = "") -> tuple[int, list[Entry]]:
        prefixes = [prefix] if isinstance(prefix, str) else list(prefix)
        body = await self.servers.call("GET", f"{API}/snapshot", params={"prefix": prefixes})
        return int(body["revision"]), [entry_from_json(e) for e in body["entries"]]

    async def changes_since(self, revision: int, *, limit: int | None = None) -> list[Change]:
        """Changes after ``revision`` this token sees, then a placeholder for the last revision the page covered."""
        params: dict[str, Any] = {"since": revision}
        if limit is not None:
            params["limit"] = limit
        body = await self.servers.call("GET", f"{API}/changes", params=params)
        changes = [change_from_json(c) for c in body["changes"]]
        covered = int(body["covered"])
        if covered > (changes[-1].revision if changes else revision):
            changes.append(placeholder(covered))
        return changes

    async def put(
        self,
        key: str,
        value: bytes,
        *,
        expect_version: int | None = None,
        actor: str = "",
        secret: bool = False,
        ctx: WriteContext | None = None,
    ) -> Change:
        return (await self.put_many([PutItem(key, value, expect_version, secret)], actor=actor, ctx=ctx))[0]

    async def put_many(
        self, items: Sequence[PutItem], *, actor: str = "", ctx: WriteContext | None = None
    ) -> list[Change]:
        return await self.write_batch(items, ctx=ctx)

    async def delete(
        self, key: str, *, expect_version: int | None = None, actor: str = "", ctx: WriteContext | None = None
    ) -> Change:
        return (await self.write_batch([DeleteItem(key, expect_version)], ctx=ctx))[0]

    async def write_batch(self, items: Sequence[BatchItem], *, ctx: WriteContext | None = None) -> list[Change]:
        """One transaction on the server; the actor is the token's name there, the action ours."""
        body = {"items": [_item(item) for item in items], "action": ctx.action if ctx else None}
        return _changes(await self.servers.call("POST", f"{API}/write", body=body))

    async def rollback(self, key: str, to_version: int, *, actor: str = "", ctx: WriteContext | None = None) -> Change:
        body = {"to_version": to_version}
        return change_from_json(await self.servers.call("POST", f"{API}/rollback/{_seg(key)}", body=body))

    async def history(self, key: str, *, limit: int | None = None) -> list[Change]:
        params = {"limit": limit} if limit is not None else None
        return _changes(await self.servers.call("GET", f"{API}/history/{_seg(key)}", params=params))

    async def value_at(self, key: str, revision: int) -> Change | None:
        try:
            body = await self.servers.call("GET", f"{API}/value-at/{_seg(key)}", params={"revision": revision})
        except NotFoundError:
            return None
        return change_from_json(body)

    async def put_schemas(self, specs: dict[str, str], *, actor: str = "") -> list[Change]:
        if not specs:
            return []
        return _changes(await self.servers.call("PUT", f"{API}/schemas", body={"schemas": specs}))

    async def get_schemas(self) -> dict[str, str]:
        body: dict[str, str] = await self.servers.call("GET", f"{API}/schemas")
        return body

    async def aclose(self) -> None:
        await self.servers.aclose()

    def __repr__(self) -> str:
        return f"HttpKVStore({self.servers.shown})"


def _item(item: BatchItem) -> dict[str, Any]:
    if isinstance(item, DeleteItem):
        return {"key": item.key, "delete": True, "expect_version": item.expect_version}
    encoded = change_to_json(Change(0, item.key, "put", 0, item.value, secret=item.secret))
    return {"key": item.key, "value": encoded["value"], "secret": item.secret, "expect_version": item.expect_version}


def _changes(rows: list[dict[str, Any]]) -> list[Change]:
    return [change_from_json(row) for row in rows]


def _seg(key: str) -> str:
    return quote(key, safe="")


def _refuse(what: str) -> NoReturn:
    raise AccordError(f"a remote client has no access to {what}: it talks to accord servers, not the database")
