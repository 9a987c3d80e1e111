"""The commands' backend on the database: a short-lived LiveConfig of config/ and acl/, without watching."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import timedelta
from typing import Any

from accord.auth.policy import Policy, parse_rule
from accord.auth.tokens import TokenIndex
from accord.cli.backend.types import HISTORY_FIELDS, AuditQuery, Row, Rows, TokenRequest, pick
from accord.cli.progress import Meter
from accord.config.admin import ConfigAdmin
from accord.config.connect import connect, default_actor
from accord.config.export import export_document
from accord.config.live import LiveConfig
from accord.core import environ
from accord.core.errors import InputError, NotFoundError
from accord.registry.fleet import parse_wait
from accord.store.audit import AuditFilter
from accord.store.engine import resolve_db_url, sqlite_file
from accord.store.types import WriteContext


class DirectBackend:
    """A LiveConfig of config/ and acl/ on the database, without watching: each command is one short session."""

    def __init__(self, live: LiveConfig) -> None:
        self.live = live
        self.admin = ConfigAdmin(live)
        self._tokens: TokenIndex | None = None
        self._ctx = WriteContext(default_actor())

    @classmethod
    async def open(cls, db_url: str | None, redis_url: str | None, *, must_exist: bool = False) -> DirectBackend:
        """With ``must_exist`` (every read-only command) a missing SQLite file is an error, never created."""
        if must_exist:
            require_database(db_url)
        timeout = environ.current().start_timeout
        live = await connect(
            db_url, redis_url or "", watch=False, use_env=False, start_timeout=timeout, extra_prefixes=("acl/",)
        )
        return cls(live)

    @property
    def database(self) -> str:
        """The database this command opened (password hidden), named on stderr when the command is done."""
        return self.live.store.url

    @property
    def token_index(self) -> TokenIndex:
        if self._tokens is None:
            self._tokens = TokenIndex(self.live.replica)
        return self._tokens

    async def aclose(self) -> None:
        await self.live.aclose()

    async def status(self) -> Row:
        await self.live.replica.listen(1.0)  # how changes travel is only known once a listener tried
        status = self.live.status().as_dict()
        return {"store": self.live.store.url, **status, "settings": len(self.live.registry.by_path)}

    async def settings(self, prefix: str) -> Rows:
        return self.admin.settings(prefix=prefix)

    async def setting(self, path: str, *, reveal: bool = False, env: str | None = None) -> Row:
        if env is not None:
            return await self.admin.profile_setting(env, path, reveal=reveal)
        return self.admin.setting_row(path, reveal=reveal)

    async def set_input(
        self,
        path: str,
        raw: str,
        *,
        expect_version: int | None,
        env: str | None = None,
        wait_applied: str | None = None,
    ) -> Row:
        wait = parse_wait(wait_applied) if wait_applied is not None else None
        if env is not None:
            if expect_version is not None:
                raise InputError("--expect-version applies to the base setting, not with --env")
            row = await self.admin.set_profile_input(env, path, raw, ctx=self._ctx)
        else:
            row = await self.admin.set_input(path, raw, expect_version=expect_version, ctx=self._ctx)
        return await self.admin.applied(row, wait)

    async def instances(self) -> Rows:
        return await self.admin.instances()

    async def unset(self, path: str, *, env: str | None = None) -> Row:
        if env is not None:
            return await self.admin.unset_profile(env, path, ctx=self._ctx)
        return await self.admin.unset(path, ctx=self._ctx)

    async def history(self, path: str, *, limit: int | None) -> Rows:
        return [pick(row, HISTORY_FIELDS) for row in await self.admin.history(path, limit=limit)]

    async def rollback(self, path: str, to_version: int | None, to_revision: int | None = None) -> Row:
        ctx = WriteContext(self._ctx.actor, "rollback")
        return await self.admin.rollback(path, to_version, to_revision=to_revision, ctx=ctx)

    async def diff(self, from_revision: int, to_revision: int | None) -> Row:
        return await self.admin.diff(from_revision, to_revision)

    def export(self, meter: Meter, *, sealed: bool = False) -> AsyncIterator[bytes]:
        meter.start(sum(1 for entry in self.live.entries("config/") if entry.key in self.live.registry.by_key))
        items = _counted(self.admin.export(sealed=sealed), meter)
        return export_document(self.live.last_revision, items, sealed=sealed)

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


def require_database(db_url: str | None) -> None:
    """A read-only command on a SQLite file that does not exist says so, instead of creating an empty store."""
    path = sqlite_file(resolve_db_url(db_url))
    if path is not None and not path.exists():
        raise NotFoundError(
            f"no database at {path}: run `accord serve` or an application that calls accord.connect() once "
            "to create it, or name an existing one with --db-url or ACCORD_DB_URL"
        )


async def _counted(items: AsyncIterator[tuple[str, object]], meter: Meter) -> AsyncIterator[tuple[str, object]]:
    async for item in items:
        yield item
        meter.advance()


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
