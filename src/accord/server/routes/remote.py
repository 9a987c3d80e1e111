"""/api/remote: the store role for remote clients (docs/remote.md, Protocol), filtered by the caller's token.

Reads come from this server's replica where it holds the keys (no database work per client), else
from the store; writes go through the replica, so they are announced to every other process as usual.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from accord.config.declarations import same_declaration
from accord.config.spec import SettingSpec, StoredSetting
from accord.core.errors import AccordError, CryptoError, InvalidInputError, NotFoundError, UnknownSettingError
from accord.core.keys import CONFIG_PREFIX, PROFILE_PREFIX, SCHEMA_PREFIX, check_profile, path_to_key
from accord.remote.wire import change_to_json, entry_to_json, placeholder
from accord.server.deps import Caller, Context, State, require_read, require_write
from accord.server.routes.remote_view import RemoteView
from accord.server.schemas import ERROR_RESPONSES, MAX_INT64
from accord.server.state import ServerState
from accord.store.types import BatchItem, Change, DeleteItem, PutItem

router = APIRouter(prefix="/api/remote", tags=["remote"], responses=ERROR_RESPONSES)
PAGE = 5000
Key = Annotated[str, PathParam(min_length=1, max_length=1024, description="A store key, e.g. config/llm/model.")]
Json = dict[str, Any]


class WriteItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=1024)
    value: str | None = Field(default=None, description="base64; secrets sealed under the token's transport key")
    secret: bool = False
    delete: bool = False
    expect_version: int | None = Field(default=None, ge=0, le=MAX_INT64)


class WriteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[WriteItemIn] = Field(min_length=1, max_length=1000)
    action: str | None = Field(default=None, max_length=64)


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_version: int = Field(ge=1, le=MAX_INT64)


class SchemasIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schemas: dict[str, str]


@router.get("/revision", summary="The database's current revision")
async def revision(state: State, caller: Caller) -> Json:
    return {"revision": await state.live.store.current_revision()}


@router.get("/snapshot", summary="Every entry under the prefixes that this token may read, from the server's memory")
async def snapshot(
    state: State, caller: Caller, request: Request, prefix: Annotated[list[str] | None, Query()] = None
) -> Json:
    wanted = tuple(prefix or ("",))
    replica = state.live.replica
    uncovered = [p for p in wanted if not replica.covers(p)]
    if uncovered:  # the stream could not keep them current either: refuse at start, not silently later
        raise InvalidInputError(f"this server's replica does not hold the prefixes {uncovered}")
    view = RemoteView.of(request, state.live, caller, wanted)
    at, entries = replica.last_revision, replica.entries()  # no await between: one consistent revision
    shown = [e for e in (view.entry(entry) for entry in entries) if e is not None]
    return {"revision": at, "entries": [entry_to_json(e) for e in shown]}


@router.get("/changes", summary="Changes after a revision that this token sees, and the last revision covered")
async def changes(
    state: State,
    caller: Caller,
    request: Request,
    since: Annotated[int, Query(ge=0, le=MAX_INT64)],
    limit: Annotated[int, Query(ge=1, le=PAGE)] = PAGE,
) -> Json:
    view = RemoteView.of(request, state.live, caller)
    rows = await state.live.store.changes_since(since, limit=limit)
    if len(rows) == limit and any(r.revision != rows[-1].revision for r in rows):
        rows = [r for r in rows if r.revision != rows[-1].revision]  # a page never splits a batch's revision
    shown = [c for c in (view.change(row) for row in rows) if c is not None]
    return {"changes": [change_to_json(c) for c in shown], "covered": rows[-1].revision if rows else since}


@router.get("/keys/{key:path}", summary="One entry (404 when absent or not visible to this token)")
async def get_key(state: State, caller: Caller, request: Request, key: Key) -> Json:
    replica = state.live.replica
    entry = replica.entry(key) if replica.covers(key) else await state.live.store.get(key)
    shown = None if entry is None else RemoteView.of(request, state.live, caller).entry(entry)
    if shown is None:
        raise NotFoundError(f"no key {key!r} visible to this token")
    return entry_to_json(shown)


@router.get("/history/{key:path}", summary="A key's versions, newest first")
async def history(
    state: State,
    caller: Caller,
    request: Request,
    key: Key,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> list[Json]:
    require_read(caller, key)
    view = RemoteView.of(request, state.live, caller)
    return [change_to_json(view.history_item(c)) for c in await state.live.store.history(key, limit=limit)]


@router.get("/value-at/{key:path}", summary="The version of a key current at a revision")
async def value_at(
    state: State, caller: Caller, request: Request, key: Key, revision: Annotated[int, Query(ge=0, le=MAX_INT64)]
) -> Json:
    require_read(caller, key)
    found = await state.live.store.value_at(key, revision)
    if found is None:
        raise NotFoundError(f"{key!r} had no stored value at revision {revision}")
    return change_to_json(RemoteView.of(request, state.live, caller).history_item(found))


@router.post("/write", summary="Puts and deletes in one transaction, each with an optional expect_version")
async def write(state: State, caller: Caller, ctx: Context, request: Request, body: WriteIn) -> list[Json]:
    view = RemoteView.of(request, state.live, caller)
    items: list[BatchItem] = []
    for item in body.items:
        require_write(caller, item.key)
        items.append(_batch_item(state, view, item))
    done = await state.live.replica.write_batch(items, ctx=replace(ctx, action=body.action or "set"))
    return [_shown(view, change) for change in done]


@router.post("/rollback/{key:path}", summary="Restore an earlier version's value as a new version")
async def rollback(state: State, caller: Caller, ctx: Context, request: Request, key: Key, body: RollbackIn) -> Json:
    require_write(caller, key)
    _setting_of(state, key)
    change = await state.live.replica.rollback_key(key, body.to_version, ctx=replace(ctx, action="rollback"))
    return _shown(RemoteView.of(request, state.live, caller), change)


@router.get("/schemas", summary="The registered schemas of the settings this token may read")
async def get_schemas(state: State, caller: Caller, request: Request) -> dict[str, str]:
    view = RemoteView.of(request, state.live, caller)
    return {p: s for p, s in (await state.live.store.get_schemas()).items() if view.readable(SCHEMA_PREFIX + p)}


@router.put("/schemas", summary="Register setting schemas (a changed one needs write access to its setting)")
async def put_schemas(state: State, caller: Caller, request: Request, body: SchemasIn) -> list[Json]:
    for path, spec in body.schemas.items():
        _check_schema(path, spec)
    existing = await state.live.store.get_schemas()
    # A client stamps what it cannot read back (a token's rules hide other settings' schemas) with its own
    # declared_by/declared_at; the same declaration with another stamp is not a change and needs no write.
    changed = {path: spec for path, spec in body.schemas.items() if not same_declaration(existing.get(path), spec)}
    for path in changed:
        require_write(caller, path_to_key(path))
    if not changed:  # every client of a service registers the same schemas at start: no write for those
        if not all(state.live.replica.entry(SCHEMA_PREFIX + path) for path in body.schemas):
            await state.live.replica.resync()  # written through another server: so a snapshot from memory holds them
        return []
    done = await state.live.store.put_schemas(changed, actor=caller.name)
    await state.live.replica.announce(done)
    await state.live.replica.resync()  # so a snapshot served from memory right after holds them
    view = RemoteView.of(request, state.live, caller)
    return [_shown(view, change) for change in done]


def _shown(view: RemoteView, change: Change) -> Json:
    return change_to_json(view.change(change) or placeholder(change.revision))


def _batch_item(state: ServerState, view: RemoteView, item: WriteItemIn) -> BatchItem:
    if item.delete:
        return DeleteItem(item.key, item.expect_version)
    if item.value is None:
        raise InvalidInputError(f"write of {item.key!r}: a put needs a value (or delete: true)")
    try:
        data = base64.b64decode(item.value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"write of {item.key!r}: the value is not base64") from None
    spec = _setting_of(state, item.key)
    try:
        plain = view.unseal(item.key, data) if item.secret else data
    except CryptoError:
        raise InvalidInputError(f"write of {item.key!r}: the secret is not sealed under this token's key") from None
    _validate(spec, plain, item.secret)
    return PutItem(item.key, view.seal(item.key, plain) if item.secret else data, item.expect_version, item.secret)


def _setting_of(state: ServerState, key: str) -> SettingSpec:
    """The registered setting a remote write is for: remote clients write settings, never raw keys (acl/...)."""
    base = key
    if key.startswith(PROFILE_PREFIX):
        profile, _, base = key.removeprefix(PROFILE_PREFIX).partition("/")
        check_profile(profile)
    spec = state.live.registry.spec_for_key(base) if base.startswith(CONFIG_PREFIX) else None
    if spec is None:
        raise UnknownSettingError(
            f"{key!r} is not the key of a registered setting (config/... or env/<profile>/config/...): "
            "remote clients write settings only"
        )
    return spec


def _validate(spec: SettingSpec, plain: bytes, secret: bool) -> None:
    """A setting's value is checked against its registered schema here too: a client's check is not enough."""
    if spec.secret and not secret:
        raise InvalidInputError(f"{spec.path} is a secret setting: its value must be sent sealed (secret: true)")
    try:
        text = plain.decode()
    except UnicodeDecodeError:
        raise InvalidInputError(f"the value for {spec.path} is not UTF-8 text") from None
    spec.validate(spec.decode(text))


def _check_schema(path: str, spec: str) -> None:
    """A schema every process can load: a bad one would be learned by every replica on the bus."""
    path_to_key(path)  # a dotted path <category>.<name>, else InvalidKeyError
    try:
        stored = StoredSetting.from_stored(path, spec)
        if not isinstance(stored.schema, dict):
            raise TypeError("schema is not an object")
        if stored.default_text is not None:
            stored.validate(stored.default)
    except AccordError as exc:
        raise InvalidInputError(f"the schema registered for {path} is not valid: {exc.detail}") from None
    except Exception as exc:  # whatever the JSON held: refuse it, never store it
        raise InvalidInputError(f"the schema registered for {path} is not a setting schema: {exc}") from None
