"""/api/config: typed settings over HTTP. Every route checks the caller's prefix policy on the store key."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi import Path as PathParam
from fastapi.responses import Response

from accord.auth.tokens import Token
from accord.config.export import export_bytes
from accord.core.errors import ConflictError, InvalidInputError
from accord.core.keys import MAX_JSON_DEPTH, check_depth, check_profile, path_to_key, profile_key
from accord.registry.fleet import parse_wait
from accord.server import schemas as s
from accord.server.deps import Caller, Context, State, require_read, require_reveal, require_write

BODY_DEPTH = 2 * MAX_JSON_DEPTH  # sections of a legacy file, then the values themselves
router = APIRouter(prefix="/api/config", tags=["config"], responses=s.ERROR_RESPONSES)
Reveal = Annotated[bool, Query(description="Show secret values in full (needs a token with reveal_secrets).")]
Sealed = Annotated[
    bool, Query(description="A full backup: secrets as their sealed bytes, restorable with the same master key.")
]
DryRun = Annotated[bool, Query(description="Report what would change and write nothing.")]
SettingPath = Annotated[str, PathParam(description="Dotted path <category>.<name>.", examples=["embedding.batch_size"])]


def _readable(caller: Token) -> Any:
    return caller.policy.can_read


@router.get("", summary="All settings, or one category's")
async def list_settings(
    state: State, caller: Caller, category: Annotated[str | None, Query(examples=["embedding"])] = None
) -> s.SettingsOut:
    rows = state.admin.settings(category=category, readable=_readable(caller))
    return s.SettingsOut(revision=state.live.last_revision, settings=[s.SettingOut(**row) for row in rows])


@router.get("/diff", summary="What changed between two revisions")
async def diff(
    state: State,
    caller: Caller,
    from_revision: Annotated[int, Query(ge=0, le=s.MAX_INT64)],
    to_revision: Annotated[int | None, Query(ge=0, le=s.MAX_INT64)] = None,
) -> s.DiffOut:
    return s.DiffOut(**await state.admin.diff(from_revision, to_revision, readable=_readable(caller)))


@router.get("/export", summary="Every stored value (secrets masked, or sealed with ?sealed=true)", response_model=None)
async def export(state: State, caller: Caller, sealed: Sealed = False) -> Response:
    """Built whole before it is sent: a value that cannot be read is an error status, never a cut-off 200."""
    if sealed:
        require_reveal(caller, "config/")
    items = state.admin.export(readable=_readable(caller), sealed=sealed)
    document = await export_bytes(state.live.last_revision, items, sealed=sealed)
    return Response(document, media_type="application/json")


@router.post("/import", summary="Import values: all or nothing; ?dry_run=true reports the diff")
async def import_settings(
    state: State, caller: Caller, ctx: Context, body: s.ImportIn, dry_run: DryRun = False
) -> s.ImportOut:
    check_depth("the request body", body.settings, BODY_DEPTH)
    for path in body.settings:
        require_write(caller, path_to_key(path))
    result = await state.admin.import_values(
        body.settings, dry_run=dry_run, ctx=replace(ctx, action="import"), revealable=caller.policy.can_reveal
    )
    state.metrics.writes.labels("import").inc(0 if dry_run else len(result["changes"]))
    return s.ImportOut(**result)


@router.post("/migrate", summary="Import a legacy config.json (nested sections, old multi-escaped values)")
async def migrate(
    state: State,
    caller: Caller,
    ctx: Context,
    legacy: Annotated[dict[str, Any], Body(examples=[{"llm": {"model": '"\\"gpt-4o\\""'}}])],
    dry_run: DryRun = False,
) -> s.MigrateOut:
    check_depth("the request body", legacy, BODY_DEPTH)
    for path in state.admin.migration_paths(legacy):
        require_write(caller, path_to_key(path))
    report = await state.admin.migrate(
        legacy, dry_run=dry_run, ctx=replace(ctx, action="migrate"), revealable=caller.policy.can_reveal
    )
    if not dry_run:
        state.metrics.writes.labels("migrate").inc(len(report["migrated"]))
    return s.MigrateOut(**report)


Profile = Annotated[
    str | None,
    Query(
        description="An environment profile: the value in its layer, store key env/<profile>/config/...",
        examples=["production"],
    ),
]
WaitApplied = Annotated[
    str | None,
    Query(
        description="Answer once every live instance has applied the write (504 naming those that have not).",
        examples=["5s"],
    ),
]


@router.get(
    "/{path}",
    summary="One setting (or, with ?env=, its value in a profile)",
    response_model=s.SettingOut | s.ProfileValueOut,
)
async def get_setting(
    state: State, caller: Caller, path: SettingPath, reveal: Reveal = False, env: Profile = None
) -> s.RowResponse:
    key = _key(state, caller, path) if env is None else profile_key(check_profile(env), _key(state, caller, path))
    require_read(caller, key)
    if reveal:
        require_reveal(caller, key)
    if env is not None:
        return s.RowResponse(await state.admin.profile_setting(env, path, reveal=reveal))
    return s.RowResponse(state.admin.setting_row(path, reveal=reveal))


@router.put(
    "/{path}",
    summary="Set a value (validated, versioned, propagated; with ?env=, in a profile)",
    response_model=s.ChangeOut | s.ProfileChangeOut,
)
async def put_setting(
    state: State,
    caller: Caller,
    ctx: Context,
    path: SettingPath,
    body: s.PutIn,
    env: Profile = None,
    wait_applied: WaitApplied = None,
) -> s.RowResponse:
    wait = parse_wait(wait_applied) if wait_applied is not None else None
    if env is not None:
        require_write(caller, profile_key(check_profile(env), _key(state, caller, path)))
        if body.input is None or body.expect_version is not None:
            raise InvalidInputError("a profile value is given as input text, without expect_version")
        row = await state.admin.set_profile_input(env, path, body.input, ctx=ctx)
        return s.RowResponse(await state.admin.applied(row, wait))
    require_write(caller, _key(state, caller, path))
    try:
        if body.input is not None:
            row = await state.admin.set_input(path, body.input, expect_version=body.expect_version, ctx=ctx)
        else:
            row = await state.admin.set(path, body.value, expect_version=body.expect_version, ctx=ctx)
    except ConflictError:
        state.metrics.conflicts.inc()
        raise
    state.metrics.writes.labels("set").inc()
    return s.RowResponse(await state.admin.applied(row, wait))


@router.delete(
    "/{path}",
    summary="Remove the stored value (back to env or default; with ?env=, a profile's value)",
    response_model=s.ChangeOut | s.ProfileChangeOut,
)
async def delete_setting(
    state: State,
    caller: Caller,
    ctx: Context,
    path: SettingPath,
    expect_version: Annotated[int | None, Query(ge=0, le=s.MAX_INT64)] = None,
    env: Profile = None,
) -> s.RowResponse:
    if env is not None:
        require_write(caller, profile_key(check_profile(env), _key(state, caller, path)))
        if expect_version is not None:
            raise InvalidInputError("expect_version applies to the base setting, not with ?env=")
        row = await state.admin.unset_profile(env, path, ctx=ctx)
    else:
        require_write(caller, _key(state, caller, path))
        row = await state.admin.unset(path, expect_version=expect_version, ctx=ctx)
    state.metrics.writes.labels("delete").inc()
    return s.RowResponse(row)


@router.get("/{path}/history", summary="Stored versions, newest first")
async def history(
    state: State,
    caller: Caller,
    path: SettingPath,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    reveal: Reveal = False,
) -> list[s.HistoryOut]:
    key = _key(state, caller, path)
    require_read(caller, key)
    if reveal:
        require_reveal(caller, key)
    return [s.HistoryOut(**row) for row in await state.admin.history(path, limit=limit, reveal=reveal)]


@router.post("/{path}/rollback", summary="Restore an earlier version's value as a new version")
async def rollback(state: State, caller: Caller, ctx: Context, path: SettingPath, body: s.RollbackIn) -> s.ChangeOut:
    require_write(caller, _key(state, caller, path))
    action = replace(ctx, action="rollback")
    row = await state.admin.rollback(path, body.to_version, to_revision=body.to_revision, ctx=action)
    state.metrics.writes.labels("rollback").inc()
    return s.ChangeOut(**row)


def _key(state: State, caller: Token, path: str) -> str:
    """The setting's store key; a mistyped path's "did you mean" names only settings the caller may read."""
    return state.live.spec(path, visible=caller.policy.can_read).key
