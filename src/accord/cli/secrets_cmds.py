"""``accord secrets rotate-key``: a new master key, every stored secret re-encrypted in one transaction."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from accord.cli import output, rekey
from accord.cli.errors import InputError, run
from accord.cli.options import DirectDbUrl, Json, RedisUrl
from accord.core.crypto import Cipher, default_key_id, generate_key
from accord.core.redis_keys import CACHE_REVISION
from accord.store.engine import resolve_db_url
from accord.store.kv import SqlKVStore

log = logging.getLogger("accord.cli")
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
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count blobs per key id; change nothing.")] = False,
    db_url: DirectDbUrl = None,
    redis_url: RedisUrl = None,
    json_out: Json = False,
) -> None:
    """Re-encrypt every stored secret (current values and history) under a new master key, all or nothing.

    Always works on the database itself, never over HTTP.

    With the embedded key file, the new key becomes its first line and the old ones stay below it, so running processes keep working.

    With ACCORD_MASTER_KEY, the new key comes from --new-key-env or is generated (then --print-new-key or --new-key-file must say where it goes); the command prints what to roll out next.
    """  # noqa: E501 - Typer joins lines of a paragraph badly, so each paragraph is one line
    url = resolve_db_url(db_url)
    source = rekey.key_source(url)
    if dry_run:
        report = await _reencrypt(url, Cipher.from_keys(source.keys), dry_run=True)
        _print({"key_source": source.describe, **report.as_dict(), "retired_key_ids": _ids(source.keys[1:])}, json_out)
        return
    new_key = _new_key(source, new_key_env, deliverable=bool(print_new_key or new_key_file))
    _install(source, new_key, new_key_file)
    report = await _reencrypt(url, Cipher.from_keys([new_key, *source.keys]), dry_run=False)
    if redis_url:
        await _invalidate_cache(redis_url)
    result: dict[str, Any] = {
        "key_source": source.describe,
        **report.as_dict(),
        "retired_key_ids": _ids([key for key in source.keys if key != new_key]),
        "next_steps": rekey.next_steps(source, new_key, staged=new_key in source.keys[1:]),
    }
    if print_new_key:
        result["new_key"] = rekey.encoded(new_key)
    _print(result, json_out)


def _new_key(source: rekey.KeySource, env_name: str | None, *, deliverable: bool) -> bytes:
    if env_name:
        key = rekey.new_key_from_env(env_name)
        if key == source.keys[0]:
            raise InputError(f"the key in {env_name} is already the active master key")
        return key
    if source.key_file is None and not deliverable:
        raise InputError(
            "with ACCORD_MASTER_KEY a generated key must go somewhere: pass --print-new-key or --new-key-file PATH, "
            "or bring your own with --new-key-env NAME"
        )
    return generate_key()


async def _reencrypt(url: str, cipher: Cipher, *, dry_run: bool) -> rekey.RekeyReport:
    store = await SqlKVStore.from_url(url)
    try:
        return await rekey.reencrypt(store.engine, cipher, dry_run=dry_run)
    finally:
        await store.aclose()


def _ids(keys: list[bytes]) -> list[str]:
    return [default_key_id(key) for key in keys]


def _install(source: rekey.KeySource, new_key: bytes, new_key_file: Path | None) -> None:
    """Put the key where readers find it before anything is sealed with it: a crash later loses nothing."""
    if new_key_file is not None:
        rekey.write_new_key_file(new_key_file, new_key)
    if source.key_file is not None:
        rekey.install_in_key_file(source, new_key)


async def _invalidate_cache(redis_url: str) -> None:
    """Drop the Redis cache marker, so the next revision check rebuilds the cache with the new blobs."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.delete(CACHE_REVISION)
    except Exception as exc:  # best effort: the cache still holds blobs the retired key opens
        log.warning("could not reset the redis value cache (it rebuilds when next found missing): %s", exc)
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()


def _print(result: dict[str, Any], json_out: bool) -> None:
    if json_out:
        output.print_json(result)
        return
    counts = result["reencrypted"]
    before = ", ".join(f"{kid}: {n}" for kid, n in result["blobs_by_key_id_before"].items()) or "none"
    if result["dry_run"]:
        output.line(
            f"dry run ({result['key_source']}, active key {result['active_key_id']}): secret blobs by key id: "
            f"{before}; {counts['kv'] + counts['history']} not under the active key; nothing changed"
        )
        return
    output.line(
        f"re-encrypted {counts['kv']} current value(s) and {counts['history']} history value(s) under key "
        f"{result['active_key_id']} ({result['key_source']}); blobs by key id before: {before}"
    )
    for step in result["next_steps"]:
        output.line(f"next: {step}")
    if "new_key" in result:
        output.line(f"new master key (keep it secret): {result['new_key']}")
