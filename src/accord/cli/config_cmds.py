"""``accord config ...``: typed settings, on the database or over HTTP with the same output."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from accord.cli import output
from accord.cli.backend import Row, open_backend
from accord.cli.errors import InputError, run
from accord.cli.options import DbUrl, Json, RedisUrl
from accord.cli.progress import ProgressOpt, meter

EnvProfile = Annotated[
    str | None,
    typer.Option("--env", help="An environment profile: its layer (store key env/<profile>/config/...) over the base."),
]

config_app = typer.Typer(help="Read and change typed settings (the store's config/ namespace).", no_args_is_help=True)


@config_app.command("list")
@run
async def config_list(
    prefix: Annotated[str, typer.Option("--prefix", "-p", help="Only settings whose dotted path starts so.")] = "",
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
    json_out: Json = False,
) -> None:
    """List settings with their value (secrets masked), type, source and version."""
    async with open_backend(db_url, redis_url, read_only=True) as backend:
        rows = await backend.settings(prefix)
    if json_out:
        output.print_json(rows)
    elif rows:
        output.console.print(output.settings_table(rows))
    else:
        output.note("no settings registered" + (f" under {json.dumps(prefix)}" if prefix else ""))


@config_app.command("get")
@run
async def config_get(
    path: str,
    reveal: Annotated[
        bool, typer.Option("--reveal", help="Show a secret in full (over HTTP: reveal_secrets).")
    ] = False,
    env: EnvProfile = None,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
    json_out: Json = False,
) -> None:
    """Show one setting (PATH is category.name); with --env, its value in that environment profile."""
    async with open_backend(db_url, redis_url, read_only=True) as backend:
        row = await backend.setting(path, reveal=reveal, env=env)
    if json_out:
        output.print_json(row)
    elif env is not None:
        _report_profile(row)
    else:
        output.console.print(output.settings_table([row]))


@config_app.command("set")
@run
async def config_set(
    path: str,
    value: Annotated[str, typer.Argument(help="The value as you would type it: text raw, numbers, true/false, JSON.")],
    expect_version: Annotated[
        int | None, typer.Option("--expect-version", help="Only write if the stored version is this (0: create only).")
    ] = None,
    env: EnvProfile = None,
    wait_applied: Annotated[
        str | None,
        typer.Option(
            "--wait-applied",
            help="Return once every live instance has applied the change (e.g. 5s); else exit 8 naming the rest.",
        ),
    ] = None,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
    json_out: Json = False,
) -> None:
    """Validate and store a new value; every running instance sees it."""
    async with open_backend(db_url, redis_url) as backend:
        row = await backend.set_input(path, value, expect_version=expect_version, env=env, wait_applied=wait_applied)
    if env is not None and not json_out:
        _report_profile(row)
    else:
        _report(row, json_out)


@config_app.command("unset")
@run
async def config_unset(
    path: str, env: EnvProfile = None, db_url: DbUrl = None, redis_url: RedisUrl = None, json_out: Json = False
) -> None:
    """Remove the stored value; the setting falls back to its environment variable or default.

    With --env, remove the value from that profile's layer only: processes running with that
    ACCORD_ENV fall back to the base value."""
    async with open_backend(db_url, redis_url) as backend:
        row = await backend.unset(path, env=env)
    if env is not None and not json_out:
        output.line(
            f"removed {row['path']} from env {row['env']} (key {row['key']}, was {output.as_text(row['value'])}, "
            f"revision {row['revision']})"
        )
    else:
        _report(row, json_out)


@config_app.command("history")
@run
async def config_history(
    path: str,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="Show at most this many versions.")] = None,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
    json_out: Json = False,
) -> None:
    """Show every stored version of a setting, newest first."""
    async with open_backend(db_url, redis_url, read_only=True) as backend:
        rows = await backend.history(path, limit=limit)
    if json_out:
        output.print_json(rows)
    else:
        output.console.print(output.history_table(rows))


@config_app.command("rollback")
@run
async def config_rollback(
    path: str,
    to_version: Annotated[int | None, typer.Option("--to-version", help="The version whose value to restore.")] = None,
    to_revision: Annotated[
        int | None, typer.Option("--to-revision", help="Restore the value the setting had at this revision.")
    ] = None,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
    json_out: Json = False,
) -> None:
    """Restore an earlier version's value as a new version (history is never rewritten)."""
    async with open_backend(db_url, redis_url) as backend:
        _report(await backend.rollback(path, to_version, to_revision), json_out)


@config_app.command("diff")
@run
async def config_diff(
    from_revision: Annotated[int, typer.Option("--from-revision", min=0, help="Compare the values at this revision…")],
    to_revision: Annotated[
        int | None, typer.Option("--to-revision", min=0, help="…with those at this one.", show_default="now")
    ] = None,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
    json_out: Json = False,
) -> None:
    """Settings whose stored value changed between two revisions, with both values (secrets masked)."""
    async with open_backend(db_url, redis_url, read_only=True) as backend:
        result = await backend.diff(from_revision, to_revision)
    if json_out:
        output.print_json(result)
        return
    changes = result["changes"]
    output.line(f"revision {result['from_revision']} → {result['to_revision']}: {len(changes)} setting(s) changed")
    if changes:
        output.console.print(output.changes_table(changes, revision=True))


@config_app.command("export")
@run
async def config_export(
    file: Annotated[str, typer.Argument(help="Where to write the JSON; - for stdout.")] = "-",
    sealed: Annotated[
        bool,
        typer.Option("--sealed", help="A full backup: secrets sealed, restorable by import with the same master key."),
    ] = False,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
    progress: ProgressOpt = None,
) -> None:
    """Write every stored value (secrets masked, or sealed) as JSON: {"revision": N, "settings": {path: value}}."""
    if file == "-":
        await _export_to(sys.stdout.buffer, db_url, redis_url, progress, sealed)
        return
    target = Path(file)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with _open_for_writing(tmp) as sink:
            await _export_to(sink, db_url, redis_url, progress, sealed)
        tmp.replace(target)  # the file is the whole export or untouched
    finally:
        tmp.unlink(missing_ok=True)
    output.note(f"exported the stored settings to {target}")


async def _export_to(
    sink: BinaryIO, db_url: str | None, redis_url: str | None, progress: bool | None, sealed: bool
) -> None:
    async with open_backend(db_url, redis_url, read_only=True) as backend:
        with meter("exporting", progress) as bar:
            async for chunk in backend.export(bar, sealed=sealed):
                sink.write(chunk)
    sink.flush()


def _open_for_writing(path: Path) -> BinaryIO:
    try:
        return path.open("wb")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None


@config_app.command("import")
@run
async def config_import(
    file: Annotated[str, typer.Argument(help='JSON as "config export" writes it, or a plain {path: value} object.')],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")] = False,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
    json_out: Json = False,
    progress: ProgressOpt = None,
) -> None:
    """Import values: all validated first, then written in one transaction, or nothing is written."""
    values = read_import_file(file)
    async with open_backend(db_url, redis_url, read_only=dry_run) as backend:
        with meter("validating" if dry_run else "importing", progress) as bar:
            result = await backend.import_values(values, dry_run=dry_run, meter=bar)
    if json_out:
        output.print_json(result)
        return
    verb = "would import" if dry_run else "imported"
    output.line(f"{verb} {len(result['changes'])} setting(s), {result['unchanged']} unchanged")
    if result["changes"]:
        output.console.print(output.changes_table(result["changes"]))


@config_app.command("migrate")
@run
async def config_migrate(
    file: Annotated[str, typer.Argument(help="A legacy config.json (nested sections become dotted paths).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would change; write nothing.")] = False,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
    json_out: Json = False,
    progress: ProgressOpt = None,
) -> None:
    """Import a legacy config.json, un-escaping old multi-escaped values; all or nothing."""
    from accord.config.migrate import load_legacy_file

    data = load_legacy_file(file)
    size = _leaves(data)
    async with open_backend(db_url, redis_url, read_only=dry_run) as backend:
        with meter("migrating", progress) as bar:
            bar.start(size)
            report = await backend.migrate(data, dry_run=dry_run)
            bar.advance(size)
    if json_out:
        output.print_json(report)
        return
    verb = "would migrate" if dry_run else "migrated"
    output.line(
        f"{verb} {len(report['migrated'])}, unchanged {len(report['unchanged'])}, "
        f"skipped unknown {len(report['skipped_unknown'])}"
    )
    for path, value in report["migrated"].items():
        output.line(f"  {verb} {path} = {json.dumps(value)}")
    for path in report["skipped_unknown"]:
        output.line(f"  skipped unknown {path}")


def read_import_file(file: str) -> dict[str, object]:
    """An export document ({"revision", "settings"}) or a plain mapping of dotted paths to values."""
    source = "stdin" if file == "-" else file
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {source}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    envelope = {"revision", "sealed", "settings"}
    if isinstance(data, dict) and isinstance(data.get("settings"), dict) and set(data) <= envelope:
        data = data["settings"]
    if not isinstance(data, dict):
        raise InputError(f"{source} must hold a JSON object of setting paths to values")
    return data


def _leaves(data: Mapping[str, Any]) -> int:
    return sum(_leaves(value) if isinstance(value, dict) else 1 for value in data.values())


def _report(row: Row, json_out: bool) -> None:
    if json_out:
        output.print_json(row)
        return
    output.line(
        f"{row['path']} = {output.as_text(row['value'])}  (version {row['version']}, "
        f"revision {row['mod_revision']}, source {row['source']})"
    )


def _report_profile(row: Row) -> None:
    output.line(
        f"{row['path']} = {output.as_text(row['value'])}  (env {row['env']}, key {row['key']}, "
        f"version {row['version']}, revision {row['mod_revision']})"
    )
