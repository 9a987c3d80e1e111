"""``accord secrets rotate-key``: a new master key, everything sealed with the old ones resealed in one transaction."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from accord.cli import output
from accord.cli.backend import name_database
from accord.cli.backend.direct import require_database
from accord.cli.errors import InputError, run
from accord.cli.options import DirectDbUrl, Json, RedisUrl
from accord.core.crypto import Cipher, default_key_id, generate_key
from accord.keys import source as keys
from accord.keys.rotate import rotate_database
from accord.store.engine import normalize_url, redact, resolve_db_url

secrets_app = typer.Typer(help="Manage the master key that encrypts secret values at rest.", no_args_is_help=True)


@secrets_app.command("rotate-key")
@run
async def rotate_key(
    new_key_env: Annotated[
        str | None, typer.Option("--new-key-env", help="Take the new key (base64 of 32 bytes) from this env variable.")
    ] = None,
    new_key_file: Annotated[
        Path | None, typer.Option("--new-key-file", help="Write a generated key to this new file (mode 0600).")
    ] = None,
    print_new_key: Annotated[
        bool, typer.Option("--print-new-key", help="Print the new key (it is never printed otherwise).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be resealed, per capability; change nothing.")
    ] = False,
    db_url: DirectDbUrl = None,
    redis_url: RedisUrl = None,
    json_out: Json = False,
) -> None:
    """Reseal every stored secret and vault original under a new master key, all or nothing.

    Always works on the database itself, never over HTTP.

    With the embedded key file, the new key becomes its first line and the old ones stay below it, so running processes keep working.

    With ACCORD_MASTER_KEY, the new key comes from --new-key-env or is generated (then --print-new-key or --new-key-file must say where it goes); the command prints what to roll out next.

    --dry-run counts the blobs not under the active key (with --new-key-env: under that key), and names the keys that must never be deleted.
    """  # noqa: E501 - Typer joins lines of a paragraph badly, so each paragraph is one line
    url = resolve_db_url(db_url)
    if dry_run:
        require_database(url)
    source = keys.key_source(url)
    if dry_run:
        _print(await _dry_run(url, source, new_key_env), json_out)
        name_database(redact(normalize_url(url)))
        return
    new_key = _new_key(source, new_key_env, deliverable=bool(print_new_key or new_key_file))
    _install(source, new_key, new_key_file)
    report = await rotate_database(url, Cipher.from_keys([new_key, *source.keys]), dry_run=False, redis_url=redis_url)
    steps = keys.next_steps(source, new_key, staged=new_key in source.keys[1:], kept=report.kept_key_ids)
    result: dict[str, Any] = {
        "key_source": source.describe,
        **report.as_dict(),
        "retired_key_ids": _ids([key for key in source.keys if key != new_key]),
        "next_steps": steps,
    }
    if print_new_key:
        result["new_key"] = keys.encoded(new_key)
    _print(result, json_out)
    name_database(redact(normalize_url(url)))


async def _dry_run(url: str, source: keys.KeySource, new_key_env: str | None) -> dict[str, Any]:
    ring = [keys.new_key_from_env(new_key_env), *source.keys] if new_key_env else source.keys
    report = await rotate_database(url, Cipher.from_keys(ring), dry_run=True)
    return {"key_source": source.describe, **report.as_dict(), "retired_key_ids": _ids(source.keys[1:])}


def _new_key(source: keys.KeySource, env_name: str | None, *, deliverable: bool) -> bytes:
    if env_name:
        key = keys.new_key_from_env(env_name)
        if key == source.keys[0]:
            raise InputError(f"the key in {env_name} is already the active master key")
        return key
    if source.key_file is None and not deliverable:
        raise InputError(
            "with ACCORD_MASTER_KEY a generated key must go somewhere: pass --print-new-key or --new-key-file PATH, "
            "or bring your own with --new-key-env NAME"
        )
    return generate_key()


def _ids(keys_: list[bytes]) -> list[str]:
    return [default_key_id(key) for key in keys_]


def _install(source: keys.KeySource, new_key: bytes, new_key_file: Path | None) -> None:
    """Put the key where readers find it before anything is sealed with it: a crash later loses nothing."""
    if new_key_file is not None:
        keys.write_new_key_file(new_key_file, new_key)
    if source.key_file is not None:
        keys.install_in_key_file(source, new_key)


def _print(result: dict[str, Any], json_out: bool) -> None:
    if json_out:
        output.print_json(result)
        return
    output.line(_summary(result))
    for step in result.get("next_steps", ()):
        output.line(f"next: {step}")
    if "new_key" in result:
        output.line(f"new master key (keep it secret): {result['new_key']}")


def _summary(result: dict[str, Any]) -> str:
    parts = "; ".join(
        f"{name}: {counts['total']} ({', '.join(f'{part} {n}' for part, n in counts['resealed'].items())})"
        for name, counts in result["capabilities"].items()
    )
    before = ", ".join(f"{kid}: {n}" for kid, n in result["blobs_by_key_id_before"].items()) or "none"
    kept = ", ".join(result["never_delete_key_ids"]) or "none"
    if result["dry_run"]:
        return (
            f"dry run ({result['key_source']}, active key {result['active_key_id']}): would reseal {parts}; "
            f"blobs by key id: {before}; never delete: {kept}; nothing changed"
        )
    return (
        f"resealed under key {result['active_key_id']} ({result['key_source']}): {parts}; "
        f"blobs by key id before: {before}; never delete: {kept}"
    )
