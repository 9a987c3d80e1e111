"""The SQL implementation of the revisioned KV store (SQLite and PostgreSQL).

Every mutation is one transaction that first bumps the single revision row. That row lock
serialises writers, so revision order is commit order and a reader asking for "changes since N"
can never miss a write that committed late — which a database sequence would not guarantee.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from accord.core.crypto import Cipher, cipher_for_database
from accord.core.errors import AccordError, CompactedError, ConflictError, NotFoundError
from accord.core.keys import SCHEMA_PREFIX, check_value_size, validate_key, validate_prefix
from accord.store import tables as t
from accord.store.audit import audit_rows
from accord.store.coalesce import Coalescer
from accord.store.deployment import read_deployment
from accord.store.dialect import (
    close_writers,
    listen_dsn,
    lock_out_other_writers,
    sqlite_holds_sealed,
    uses_put_function,
)
from accord.store.engine import conflict_error, create_engine, redact, retry_unsent, run_read, run_write, write_tx
from accord.store.migrate import upgrade
from accord.store.rows import change_from_row, entry_from_row, utc
from accord.store.timers import SqlTimers
from accord.store.types import (
    AuditFilter,
    AuditRow,
    BatchItem,
    Change,
    DeleteItem,
    Deployment,
    Entry,
    KVStore,
    Op,
    PutItem,
    WriteContext,
)

_PG_PUT_GROUPS = sa.text(
    "SELECT o_group, o_revision, o_version, o_at, o_conflict_key, o_actual, o_expected FROM accord_put_groups("
    ":groups, :keys, :values, :expects, :secrets, :actors, :actions, :request_ids)"
).bindparams(
    sa.bindparam("groups", type_=postgresql.ARRAY(sa.Integer)),
    sa.bindparam("keys", type_=postgresql.ARRAY(sa.Text)),
    sa.bindparam("values", type_=postgresql.ARRAY(sa.LargeBinary)),
    sa.bindparam("expects", type_=postgresql.ARRAY(sa.BigInteger)),
    sa.bindparam("secrets", type_=postgresql.ARRAY(sa.Boolean)),
    sa.bindparam("actors", type_=postgresql.ARRAY(sa.Text)),
    sa.bindparam("actions", type_=postgresql.ARRAY(sa.Text)),
    sa.bindparam("request_ids", type_=postgresql.ARRAY(sa.Text)),
)
_PutRequest = tuple[Sequence[PutItem], WriteContext]  # one caller's puts, written all or nothing
_SCHEMA_LOCK = 0x6163636F7273  # "accors": serialises schema registration


class SqlKVStore:
    """The revisioned store on one SQLAlchemy async engine.

    ``engine`` is public for capabilities that keep their own tables in the same database (the
    vault); everything else goes through the methods, which hide the URL's password.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._deployment: Deployment | None = None
        self._put_coalescer: Coalescer[_PutRequest, list[Change]] = Coalescer(self._put_groups, _request_bytes)

    @classmethod
    async def from_url(cls, url: str, *, migrate: bool = True) -> SqlKVStore:
        """Open the store at ``url``, applying migrations first unless told not to."""
        store = cls(create_engine(url))
        if migrate:
            try:
                await store.migrate()
            except BaseException:
                await store.aclose()
                raise
        return store

    @property
    def url(self) -> str:
        return redact(self.engine.url)

    @property
    def identity(self) -> str:
        return redact(self.engine.url)

    def listen_dsn(self) -> str | None:
        return listen_dsn(self.engine.url)

    def cipher(self) -> Cipher:
        url = self.engine.url
        holds = functools.partial(sqlite_holds_sealed, url)
        return cipher_for_database(url.render_as_string(hide_password=False), holds_sealed=holds)

    async def migrate(self) -> None:
        await upgrade(self.engine)

    async def deployment(self) -> Deployment:
        if self._deployment is None:
            self._deployment = await read_deployment(self.engine)
        return self._deployment

    async def audit(self, flt: AuditFilter) -> list[AuditRow]:
        return await audit_rows(self.engine, flt)

    def timers(self) -> SqlTimers:
        return SqlTimers(self.engine)

    async def aclose(self) -> None:
        await self._put_coalescer.aclose()
        await self.engine.dispose()
        await close_writers(self.engine)

    async def __aenter__(self) -> SqlKVStore:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def current_revision(self) -> int:
        return await run_read(self.engine, functools.partial(_meta_value, name=t.REVISION_ROW))

    async def get(self, key: str) -> Entry | None:
        return await run_read(self.engine, functools.partial(_current, key=key))

    async def snapshot(self, prefix: str | Sequence[str] = "") -> tuple[int, list[Entry]]:
        """All entries under ``prefix`` (or any of several prefixes) and the revision they reflect, in one read."""
        prefixes = [prefix] if isinstance(prefix, str) else list(prefix)
        query = sa.select(t.kv).order_by(t.kv.c.key)
        if prefixes and "" not in prefixes:
            matches = [t.kv.c.key.startswith(validate_prefix(p), autoescape=True) for p in prefixes]
            query = query.where(sa.or_(*matches))

        def read(conn: sa.Connection) -> tuple[int, list[Entry]]:
            revision = _meta_value(conn, t.REVISION_ROW)
            return revision, [entry_from_row(row) for row in conn.execute(query)]

        return await run_read(self.engine, read)

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
        """Write several keys in one transaction (one revision each): all of them or, on any error, none."""
        for item in items:
            validate_key(item.key)
            check_value_size(item.key, item.value)
        context = ctx or WriteContext(actor)
        if uses_put_function(self.engine):
            return await self._put_coalescer.submit((items, context))
        return await run_write(self.engine, lambda conn: [_put_one(conn, item, context) for item in items])

    async def _put_groups(self, requests: Sequence[_PutRequest]) -> list[list[Change] | ConflictError]:
        """One statement for the puts of every request (``accord_put_groups``), each request all or nothing.

        The revision lock is held for the function and the commit, not across round trips. No ping at
        checkout: a transaction whose connection was lost before its COMMIT is retried once.
        """
        items = [(group, item, ctx) for group, (batch, ctx) in enumerate(requests) for item in batch]
        params = {
            "groups": [group for group, _, _ in items],
            "keys": [item.key for _, item, _ in items],
            "values": [item.value for _, item, _ in items],
            "expects": [item.expect_version for _, item, _ in items],
            "secrets": [item.secret for _, item, _ in items],
            "actors": [ctx.actor for _, _, ctx in items],
            "actions": [ctx.action for _, _, ctx in items],
            "request_ids": [ctx.request_id for _, _, ctx in items],
        }
        committing: list[bool] = []

        async def attempt() -> Sequence[Any]:
            committing.clear()
            async with write_tx(self.engine) as conn:
                rows = (await conn.execute(_PG_PUT_GROUPS, params)).all()
                committing.append(True)  # leaving the block sends COMMIT
            return rows

        rows = iter(await retry_unsent(attempt, committing=lambda: bool(committing)))
        outcomes: list[list[Change] | ConflictError] = []
        for batch, ctx in requests:
            changes: list[Change] = []
            for item in batch:
                _group, rev, version, at, missed, actual, expected = next(rows)
                if rev is None:
                    outcomes.append(conflict_error(str(missed), int(expected), int(actual)))
                    break
                changes.append(
                    Change(
                        int(rev),
                        item.key,
                        "put",
                        int(version),
                        item.value,
                        item.secret,
                        ctx.actor,
                        utc(at),
                        False,
                        ctx.action,
                        ctx.request_id,
                    )
                )
            else:
                outcomes.append(changes)
        return outcomes

    async def delete(
        self, key: str, *, expect_version: int | None = None, actor: str = "", ctx: WriteContext | None = None
    ) -> Change:
        validate_key(key)
        context = ctx or WriteContext(actor)
        return await run_write(
            self.engine, functools.partial(_delete_one, item=DeleteItem(key, expect_version), ctx=context)
        )

    async def write_batch(self, items: Sequence[BatchItem], *, ctx: WriteContext | None = None) -> list[Change]:
        """Puts and deletes in one transaction, one revision per item; a failed compare-and-set writes nothing.

        Mixed batches take the SQLAlchemy path on both dialects (PostgreSQL's ``accord_put_groups`` covers puts
        only). Deleting a missing key is a ``NotFoundError``, and nothing of the batch is written.
        """
        for item in items:
            validate_key(item.key)
            if isinstance(item, PutItem):
                check_value_size(item.key, item.value)
        context = ctx or WriteContext()

        def write(conn: sa.Connection) -> list[Change]:
            return [
                _put_one(conn, item, context) if isinstance(item, PutItem) else _delete_one(conn, item, context)
                for item in items
            ]

        return await run_write(self.engine, write)

    async def latest_deletes(self, prefix: str) -> dict[str, int]:
        h = t.kv_history.c
        query = (
            sa.select(h.key, sa.func.max(h.revision))
            .where(h.key.startswith(validate_prefix(prefix), autoescape=True), h.op == "delete")
            .where(h.key.not_in(sa.select(t.kv.c.key)))
            .group_by(h.key)
        )
        rows = await run_read(self.engine, lambda conn: conn.execute(query).all())
        return {str(key): int(revision) for key, revision in rows}

    async def history(self, key: str, *, limit: int | None = None) -> list[Change]:
        """Mutations of ``key``, newest first."""
        query = sa.select(t.kv_history).where(t.kv_history.c.key == key).order_by(t.kv_history.c.revision.desc())
        return await run_read(
            self.engine, lambda conn: [change_from_row(row) for row in conn.execute(query.limit(limit))]
        )

    async def rollback(self, key: str, to_version: int, *, actor: str = "", ctx: WriteContext | None = None) -> Change:
        """Write the value ``key`` had at ``to_version`` as a new revision; history is never rewritten.

        Versions never restart (a key written after a delete continues its sequence), so a version names one value.
        """
        query = (
            sa.select(t.kv_history)
            .where(t.kv_history.c.key == key, t.kv_history.c.version == to_version)
            .order_by(t.kv_history.c.revision.desc())
            .limit(1)
        )
        row = await run_read(self.engine, lambda conn: conn.execute(query).first())
        if row is None:
            raise NotFoundError(f"key {key!r} has no version {to_version} in its history")
        old = change_from_row(row)
        context = ctx or WriteContext(actor, "rollback")
        if old.op == "delete" or old.value is None:
            return await self.delete(key, ctx=context)
        return await self.put(key, old.value, secret=old.secret, ctx=context)

    async def value_at(self, key: str, revision: int) -> Change | None:
        """The last change of ``key`` at or before ``revision`` (None if it had none then)."""
        h = t.kv_history.c
        query = sa.select(t.kv_history).where(h.key == key, h.revision <= revision).order_by(h.revision.desc()).limit(1)
        row = await run_read(self.engine, lambda conn: conn.execute(query).first())
        return change_from_row(row) if row else None

    async def changes_since(self, revision: int, *, limit: int | None = None) -> list[Change]:
        """Every change after ``revision`` in revision order; CompactedError if that range is gone."""
        query = _CHANGES_SINCE if limit is None else _CHANGES_SINCE.limit(limit)

        def read(conn: sa.Connection) -> list[Change]:
            compacted = _meta_value(conn, t.COMPACTED_ROW)
            if revision < compacted:
                raise CompactedError(
                    f"history before revision {compacted} was compacted; cannot replay from {revision}",
                    compacted_revision=compacted,
                )
            return [change_from_row(row) for row in conn.execute(query, {"after": revision})]

        return await run_read(self.engine, read)

    async def compact(self, below_revision: int) -> int:
        """Drop history rows older than ``below_revision``, keeping each key's latest row; returns rows removed."""
        latest = sa.select(sa.func.max(t.kv_history.c.revision)).group_by(t.kv_history.c.key)

        def write(conn: sa.Connection) -> int:
            target = min(below_revision, _meta_value(conn, t.REVISION_ROW))
            result = conn.execute(
                sa.delete(t.kv_history).where(t.kv_history.c.revision < target, t.kv_history.c.revision.not_in(latest))
            )
            conn.execute(
                sa.update(t.meta).where(t.meta.c.name == t.COMPACTED_ROW, t.meta.c.value < target).values(value=target)
            )
            return int(result.rowcount or 0)

        return await run_write(self.engine, write)

    async def put_schemas(self, specs: dict[str, str], *, actor: str = "") -> list[Change]:
        """Register declared setting schemas (path -> JSON spec); existing paths are replaced.

        Each new or changed schema is also written as the entry ``schema/<path>`` in the same transaction,
        so a declaration is a revision like any change and reaches running processes over the bus.
        """
        if not specs:
            return []
        return await run_write(self.engine, functools.partial(_put_schemas, specs=specs, actor=actor))

    async def get_schemas(self) -> dict[str, str]:
        rows = await run_read(
            self.engine, lambda conn: conn.execute(sa.select(t.setting_schema.c.path, t.setting_schema.c.spec)).all()
        )
        return {row.path: row.spec for row in rows}

    def __repr__(self) -> str:
        return f"SqlKVStore({self.url!r})"


# The write path's statements, built once: building one (and its cache key) costs more than SQLite running it.
_META = sa.select(t.meta.c.value).where(t.meta.c.name == sa.bindparam("name"))
_BUMP = (
    sa.update(t.meta).where(t.meta.c.name == t.REVISION_ROW).values(value=t.meta.c.value + 1).returning(t.meta.c.value)
)
_CURRENT = sa.select(t.kv).where(t.kv.c.key == sa.bindparam("name"))
_LAST_VERSION = sa.select(sa.func.max(t.kv_history.c.version)).where(t.kv_history.c.key == sa.bindparam("name"))
_INSERT_KV = sa.insert(t.kv)
_UPDATE_KV = sa.update(t.kv).where(t.kv.c.key == sa.bindparam("name"))  # the SET columns come with the parameters
_DELETE_KV = sa.delete(t.kv).where(t.kv.c.key == sa.bindparam("name"))
_INSERT_HISTORY = sa.insert(t.kv_history)
_CHANGES_SINCE = (
    sa.select(t.kv_history).where(t.kv_history.c.revision > sa.bindparam("after")).order_by(t.kv_history.c.revision)
)


def _meta_value(conn: sa.Connection, name: str) -> int:
    return int(conn.scalar(_META, {"name": name}) or 0)


def _bump_revision(conn: sa.Connection) -> int:
    return int(conn.execute(_BUMP).scalar_one())


def _put_one(conn: sa.Connection, item: PutItem, ctx: WriteContext) -> Change:
    revision = _bump_revision(conn)
    current = _current(conn, item.key)
    _check_expected(item.key, item.expect_version, current)
    version = (current.version if current else _last_version(conn, item.key)) + 1
    change = _change_of(revision, item.key, "put", version, item.value, item.secret, ctx)
    fields = {
        "value": item.value,
        "mod_revision": revision,
        "version": version,
        "secret": item.secret,
        "updated_at": change.at,
        "updated_by": ctx.actor,
    }
    if current is None:
        conn.execute(_INSERT_KV, {"key": item.key, "create_revision": revision, **fields})
    else:
        conn.execute(_UPDATE_KV, {"name": item.key, **fields})
    _append_history(conn, change)
    return change


def _delete_one(conn: sa.Connection, item: DeleteItem, ctx: WriteContext) -> Change:
    revision = _bump_revision(conn)
    current = _current(conn, item.key)
    if current is None:
        raise NotFoundError(f"key {item.key!r} does not exist")
    _check_expected(item.key, item.expect_version, current)
    conn.execute(_DELETE_KV, {"name": item.key})
    change = _change_of(revision, item.key, "delete", current.version + 1, None, current.secret, ctx)
    _append_history(conn, change)
    return change


def _put_schemas(conn: sa.Connection, specs: dict[str, str], actor: str) -> list[Change]:
    now = datetime.now(UTC)
    ctx = WriteContext(actor or "schema", "schema")
    # Processes starting together would both see a path missing and both insert it.
    lock_out_other_writers(conn, _SCHEMA_LOCK)
    existing = _existing_schemas(conn, list(specs))
    changes: list[Change] = []
    for path, spec in specs.items():
        if existing.get(path) == spec and _current(conn, SCHEMA_PREFIX + path) is not None:
            continue
        if path not in existing:
            conn.execute(sa.insert(t.setting_schema).values(path=path, spec=spec, updated_at=now))
        elif existing[path] != spec:
            conn.execute(
                sa.update(t.setting_schema).where(t.setting_schema.c.path == path).values(spec=spec, updated_at=now)
            )
        changes.append(_put_one(conn, PutItem(SCHEMA_PREFIX + path, spec.encode(), None, False), ctx))
    return changes


def _change_of(
    revision: int, key: str, op: Op, version: int, value: bytes | None, secret: bool, ctx: WriteContext
) -> Change:
    now = datetime.now(UTC)
    return Change(revision, key, op, version, value, secret, ctx.actor, now, False, ctx.action, ctx.request_id)


def _current(conn: sa.Connection, key: str) -> Entry | None:
    row = conn.execute(_CURRENT, {"name": key}).first()
    return entry_from_row(row) if row else None


def _last_version(conn: sa.Connection, key: str) -> int:
    """The version of a key's last change, a delete included: a key written again continues from there."""
    return int(conn.scalar(_LAST_VERSION, {"name": key}) or 0)


def _existing_schemas(conn: sa.Connection, paths: list[str]) -> dict[str, str]:
    query = sa.select(t.setting_schema.c.path, t.setting_schema.c.spec).where(t.setting_schema.c.path.in_(paths))
    return {row.path: row.spec for row in conn.execute(query).all()}


def _append_history(conn: sa.Connection, change: Change) -> None:
    conn.execute(
        _INSERT_HISTORY,
        {
            "revision": change.revision,
            "key": change.key,
            "op": change.op,
            "value": change.value,
            "version": change.version,
            "secret": change.secret,
            "actor": change.actor,
            "at": change.at,
            "action": change.action,
            "request_id": change.request_id,
        },
    )


def _check_expected(key: str, expected: int | None, current: Entry | None) -> None:
    actual = current.version if current else 0
    if expected is not None and expected != actual:
        raise conflict_error(key, expected, actual)


def engine_of(store: KVStore) -> AsyncEngine:
    """The SQL engine under ``store``, for a capability that keeps its own tables in the same database."""
    if not isinstance(store, SqlKVStore):
        raise AccordError(f"{type(store).__name__} is not an SQL store; this capability needs one")
    return store.engine


def _request_bytes(request: _PutRequest) -> int:
    return sum(len(item.value) for item in request[0])
