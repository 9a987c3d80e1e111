"""Where a command's work happens: straight on the database, or on a server over HTTP.

Both backends hand back the same rows (the ones ``ConfigAdmin`` and the /api routes produce), so a
command only renders rows and prints the same thing either way.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from accord.auth.policy import Policy, parse_rule
from accord.auth.tokens import TokenIndex
from accord.cli.progress import Meter
from accord.config.admin import ConfigAdmin, Row, Rows
from accord.config.connect import connect, default_actor
from accord.config.live import LiveConfig
from accord.store.audit import AuditFilter
from accord.store.types import WriteContext

ADDR_ENV = "ACCORD_ADDR"
TOKEN_ENV = "ACCORD_TOKEN"
HISTORY_FIELDS = ("revision", "version", "op", "value", "actor", "at")
MAX_TTL_S = 10 * 365 * 86400


@dataclass(frozen=True)
class AuditQuery:
    prefix: str = ""
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    limit: int = 100


@dataclass(frozen=True)
class TokenRequest:
    name: str
    rules: tuple[str, ...]
    reveal_secrets: bool = False
    ttl_seconds: int | None = None


class Backend(Protocol):
    """Everything the commands need, as JSON-ready rows with secrets masked."""

    async def status(self) -> Row: ...

    async def settings(self, prefix: str) -> Rows: ...

    async def setting(self, path: str, *, reveal: bool = False) -> Row: ...

    async def set_input(self, path: str, raw: str, *, expect_version: int | None) -> Row: ...

    async def unset(self, path: str) -> Row: ...

    async def history(self, path: str, *, limit: int | None) -> Rows: ...

    async def rollback(self, path: str, to_version: int) -> Row: ...

    async def diff(self, from_revision: int, to_revision: int | None) -> Row: ...

    def export(self, meter: Meter) -> AsyncIterator[bytes]: ...

    async def import_values(self, values: Mapping[str, object], *, dry_run: bool, meter: Meter) -> Row: ...

    async def migrate(self, data: Mapping[str, Any], *, dry_run: bool) -> Row: ...

    async def audit(self, query: AuditQuery) -> Rows: ...

    async def tokens(self) -> Rows: ...

    async def create_token(self, request: TokenRequest) -> Row: ...

    async def revoke_token(self, name: str) -> Row: ...

    async def aclose(self) -> None: ...


def server_address() -> str | None:
    return os.environ.get(ADDR_ENV, "").strip() or None


@asynccontextmanager
async def open_backend(db_url: str | None, redis_url: str | None) -> AsyncIterator[Backend]:
    """The server named by ACCORD_ADDR if set, else the database."""
    backend: Backend
    addr = server_address()
    if addr is not None:
        from accord.cli.http import HttpBackend  # httpx only when it is needed

        backend = HttpBackend(addr, os.environ.get(TOKEN_ENV) or None)
    else:
        backend = await DirectBackend.open(db_url, redis_url)
    try:
        yield backend
    finally:
        await backend.aclose()


def export_header(revision: int) -> bytes:
    """The export document, built the way the server streams it so both modes write the same bytes."""
    return f'{{"revision":{revision},"settings":{{'.encode()


def export_item(path: str, value: object, *, first: bool) -> bytes:
    return (("" if first else ",") + json.dumps(path) + ":" + json.dumps(value, ensure_ascii=False)).encode()


EXPORT_FOOTER = b"}}\n"


def pick(row: Row, fields: tuple[str, ...]) -> Row:
    return {name: row.get(name) for name in fields}


class DirectBackend:
    """A LiveConfig of config/ and acl/ on the database, without watching: each command is one short session."""

    def __init__(self, live: LiveConfig) -> None:
        self.live = live
        self.admin = ConfigAdmin(live)
        self._tokens: TokenIndex | None = None
        self._ctx = WriteContext(default_actor())

    @classmethod
    async def open(cls, db_url: str | None, redis_url: str | None) -> DirectBackend:
        timeout = float(os.environ.get("ACCORD_START_TIMEOUT", "10"))
        live = await connect(
            db_url, redis_url or "", watch=False, use_env=False, start_timeout=timeout, extra_prefixes=("acl/",)
        )
        return cls(live)

    @property
    def token_index(self) -> TokenIndex:
        if self._tokens is None:
            self._tokens = TokenIndex(self.live.replica)
        return self._tokens

    async def aclose(self) -> None:
        await self.live.aclose()

    async def status(self) -> Row:
        status = self.live.status().as_dict()
        return {"store": self.live.store.url, **status, "settings": len(self.live.registry.by_path)}

    async def settings(self, prefix: str) -> Rows:
        return self.admin.settings(prefix=prefix)

    async def setting(self, path: str, *, reveal: bool = False) -> Row:
        return self.admin.setting_row(path, reveal=reveal)

    async def set_input(self, path: str, raw: str, *, expect_version: int | None) -> Row:
        return await self.admin.set_input(path, raw, expect_version=expect_version, ctx=self._ctx)

    async def unset(self, path: str) -> Row:
        return await self.admin.unset(path, ctx=self._ctx)

    async def history(self, path: str, *, limit: int | None) -> Rows:
        return [pick(row, HISTORY_FIELDS) for row in await self.admin.history(path, limit=limit)]

    async def rollback(self, path: str, to_version: int) -> Row:
        return await self.admin.rollback(path, to_version, ctx=WriteContext(self._ctx.actor, "rollback"))

    async def diff(self, from_revision: int, to_revision: int | None) -> Row:
        return await self.admin.diff(from_revision, to_revision)

    async def export(self, meter: Meter) -> AsyncIterator[bytes]:
        meter.start(sum(1 for entry in self.live.entries("config/") if entry.key in self.live.registry.by_key))
        yield export_header(self.live.last_revision)
        first = True
        async for path, value in self.admin.export():
            yield export_item(path, value, first=first)
            first = False
            meter.advance()
        yield EXPORT_FOOTER

    async def import_values(self, values: Mapping[str, object], *, dry_run: bool, meter: Meter) -> Row:
        meter.start(len(values))
        ctx = WriteContext(self._ctx.actor, "import")
        return await self.admin.import_values(_Metered(values, meter), dry_run=dry_run, ctx=ctx)

    async def migrate(self, data: Mapping[str, Any], *, dry_run: bool) -> Row:
        return await self.admin.migrate(data, dry_run=dry_run, ctx=WriteContext(self._ctx.actor, "migrate"))

    async def audit(self, query: AuditQuery) -> Rows:
        flt = AuditFilter(query.prefix, query.actor, query.action, query.since, None, query.limit)
        return await self.admin.audit(flt)

    async def tokens(self) -> Rows:
        return [token.public() for token in self.token_index.list()]

    async def create_token(self, request: TokenRequest) -> Row:
        policy = Policy(tuple(parse_rule(rule) for rule in request.rules), request.reveal_secrets)
        ttl = timedelta(seconds=request.ttl_seconds) if request.ttl_seconds else None
        token, secret = await self.token_index.create(request.name, policy, ttl=ttl, ctx=self._ctx)
        return {**token.public(), "secret": secret}

    async def revoke_token(self, name: str) -> Row:
        return (await self.token_index.revoke(name, ctx=self._ctx)).public()

    async def bootstrap_token(self) -> tuple[str, str]:
        """A new management token: (name, secret)."""
        token, secret = await self.token_index.bootstrap(ctx=self._ctx)
        return token.name, secret


class _Metered(Mapping[str, object]):
    """The values to import, advancing the progress bar as the import validates them one by one."""

    def __init__(self, values: Mapping[str, object], meter: Meter) -> None:
        self._values = values
        self._meter = meter

    def __getitem__(self, key: str) -> object:
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[str]:
        for key in self._values:
            yield key
            self._meter.advance()
