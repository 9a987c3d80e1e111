"""``accord kv``, ``accord services``, ``accord health``, ``accord service-url``: the registry from a terminal.

They speak the Consul API — to the server named by ACCORD_ADDR, or to the same routes run in this
process on the database — so what they print is what Consul clients see. ``kv export``/``import``
use ``consul kv export``'s JSON, so an export from Consul imports as is.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from accord.cli import output
from accord.cli.backend.consul import decoded_value, open_consul
from accord.cli.errors import InputError, run
from accord.cli.options import DbUrl, Json, RedisUrl
from accord.core.errors import ConflictError, NotFoundError

kv_app = typer.Typer(help="Consul-style KV keys: raw bytes with history, audit and ACLs (`/v1/kv`).")
services_app = typer.Typer(help="Registered services and their instances (`/v1/agent/service`, `/v1/catalog`).")

Key = Annotated[str, typer.Argument(metavar="KEY", help="A KV key, e.g. app/db/url (no leading /).")]
Prefix = Annotated[str, typer.Argument(metavar="PREFIX", help="Key prefix (a string prefix; empty = all).")]
Name = Annotated[str, typer.Argument(metavar="NAME", help="A service name.")]


def _entry_row(entry: dict[str, Any]) -> dict[str, Any]:
    value = decoded_value(entry)
    try:
        text: str | None = value.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {
        "key": entry["Key"],
        "value": text,
        "value_base64": None if text is not None else base64.b64encode(value).decode(),
        "flags": entry.get("Flags", 0),
        "create_index": entry.get("CreateIndex"),
        "modify_index": entry.get("ModifyIndex"),
        "session": entry.get("Session"),
    }


@kv_app.command("get")
@run
async def kv_get(key: Key, db_url: DbUrl = None, redis_url: RedisUrl = None, json_out: Json = False) -> None:
    """Print a key's value (raw bytes on stdout), or the whole entry with --json. Exit 4 if it is missing."""
    async with open_consul(db_url, redis_url, read_only=True) as consul:
        entry = await consul.kv_get(key)
        if entry is None:  # inside: a command that failed names no database, its error stays one line
            raise NotFoundError(f"no KV key {json.dumps(key)}")
    if json_out:
        output.print_json(_entry_row(entry))
        return
    sys.stdout.buffer.write(decoded_value(entry))
    sys.stdout.flush()


@kv_app.command("put")
@run
async def kv_put(
    key: Key,
    value: Annotated[
        str, typer.Argument(metavar="VALUE", help="The value; '-' reads it from stdin, '@FILE' from a file.")
    ],
    flags: Annotated[int, typer.Option(min=0, help="Consul's opaque 64-bit flags.")] = 0,
    cas: Annotated[
        int | None,
        typer.Option(min=0, metavar="INDEX", help="Write only if the key's ModifyIndex is INDEX (0: only if absent)."),
    ] = None,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
) -> None:
    """Set a key. With --cas, exit 3 if someone else changed it first (nothing is written)."""
    data = _read_value(value)
    async with open_consul(db_url, redis_url, read_only=False) as consul:
        written = await consul.kv_put(key, data, flags=flags, cas=cas)
    if not written:
        detail = f"KV key {json.dumps(key)} was not written: its ModifyIndex is not {cas}"
        raise ConflictError(detail, key=key, expected=cas if cas is not None else -1, actual=-1)
    output.note(f"put {json.dumps(key)} ({len(data)} bytes)")


@kv_app.command("delete")
@run
async def kv_delete(
    key: Key,
    recurse: Annotated[bool, typer.Option("--recurse", help="Delete every key starting with KEY.")] = False,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
) -> None:
    """Delete a key (or, with --recurse, every key under a prefix). Deleting a missing key is not an error."""
    async with open_consul(db_url, redis_url, read_only=False) as consul:
        await consul.kv_delete(key, recurse=recurse)
    output.note(f"deleted {json.dumps(key)}{' and every key under it' if recurse else ''}")


@kv_app.command("list")
@run
async def kv_list(
    prefix: Prefix = "", db_url: DbUrl = None, redis_url: RedisUrl = None, json_out: Json = False
) -> None:
    """List keys under a prefix with their flags, indexes and sizes."""
    async with open_consul(db_url, redis_url, read_only=True) as consul:
        entries = await consul.kv_list(prefix)
    rows = [_entry_row(entry) for entry in entries]
    if json_out:
        output.print_json(rows)
        return
    table = output.plain_table(["KEY", "FLAGS", "MODIFY INDEX", "BYTES"])
    for entry, row in zip(entries, rows, strict=True):
        table.add_row(row["key"], str(row["flags"]), str(row["modify_index"]), str(len(decoded_value(entry))))
    output.console.print(table)


@kv_app.command("export")
@run
async def kv_export(prefix: Prefix = "", db_url: DbUrl = None, redis_url: RedisUrl = None) -> None:
    """Print keys under a prefix in `consul kv export` JSON ([{"key","flags","value": base64}])."""
    async with open_consul(db_url, redis_url, read_only=True) as consul:
        entries = await consul.kv_list(prefix)
    document = [{"key": e["Key"], "flags": e.get("Flags", 0), "value": e.get("Value") or ""} for e in entries]
    output.print_json(document)


@kv_app.command("import")
@run
async def kv_import(
    source: Annotated[str, typer.Argument(metavar="FILE", help="A `consul kv export` JSON file, or '-' for stdin.")],
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
) -> None:
    """Write every key of a `consul kv export` document. The whole file is checked before anything is written."""
    items = _parse_export(sys.stdin.read() if source == "-" else _read_file(source))
    async with open_consul(db_url, redis_url, read_only=False) as consul:
        for key, flags, data in items:
            await consul.kv_put(key, data, flags=flags)
    output.note(f"imported {len(items)} key(s)")


def _read_file(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def _read_value(value: str) -> bytes:
    if value == "-":
        return sys.stdin.buffer.read()
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {value[1:]}: {exc.strerror}") from None
    return value.encode()


def _parse_export(text: str) -> list[tuple[str, int, bytes]]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise InputError(f"not a `consul kv export` document: {exc}") from None
    if not isinstance(document, list):
        raise InputError("not a `consul kv export` document: expected a JSON array of {key, flags, value}")
    items = []
    for position, item in enumerate(document):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise InputError(f'item {position}: expected an object with a string "key"')
        flags = item.get("flags", 0)
        if not isinstance(flags, int) or isinstance(flags, bool) or flags < 0:
            raise InputError(f"item {position} ({json.dumps(item['key'])}): flags must be a non-negative integer")
        try:
            data = base64.b64decode(item.get("value") or "", validate=True)
        except ValueError:
            raise InputError(f"item {position} ({json.dumps(item['key'])}): value is not base64") from None
        items.append((item["key"], flags, data))
    return items


# ----- services ----------------------------------------------------------------------------------


def _aggregate(checks: list[dict[str, Any]]) -> str:
    statuses = {check.get("Status") for check in checks}
    for status in ("critical", "warning"):
        if status in statuses:
            return status
    return "passing"


@services_app.command("list")
@run
async def services_list(db_url: DbUrl = None, redis_url: RedisUrl = None, json_out: Json = False) -> None:
    """Every service with its tags and how many of its instances are passing."""
    rows: list[dict[str, Any]] = []
    async with open_consul(db_url, redis_url, read_only=True) as consul:
        for name, tags in sorted((await consul.services()).items()):
            instances = await consul.health(name)
            passing = sum(1 for entry in instances if _aggregate(entry.get("Checks", [])) == "passing")
            rows.append({"service": name, "tags": tags, "instances": len(instances), "passing": passing})
    if json_out:
        output.print_json(rows)
        return
    table = output.plain_table(["SERVICE", "INSTANCES", "PASSING", "TAGS"])
    for row in rows:
        table.add_row(row["service"], str(row["instances"]), str(row["passing"]), ", ".join(row["tags"]))
    output.console.print(table)


@services_app.command("register")
@run
async def services_register(
    name: Name,
    port: Annotated[int, typer.Option(min=0, max=65535, help="The instance's port.")],
    address: Annotated[str, typer.Option(metavar="HOST", help="The instance's address.")] = "",
    service_id: Annotated[str | None, typer.Option("--id", metavar="ID", help="Instance ID (default: NAME).")] = None,
    tag: Annotated[list[str] | None, typer.Option(metavar="TAG", help="A tag (repeatable).")] = None,
    http: Annotated[str | None, typer.Option(metavar="URL", help="An HTTP health check of this URL.")] = None,
    tcp: Annotated[str | None, typer.Option(metavar="HOST:PORT", help="A TCP health check of this address.")] = None,
    ttl: Annotated[
        str | None, typer.Option(metavar="DURATION", help="A TTL check (e.g. 30s) the instance passes.")
    ] = None,
    interval: Annotated[str, typer.Option(metavar="DURATION", help="How often HTTP/TCP checks run.")] = "10s",
    deregister_after: Annotated[
        str | None, typer.Option(metavar="DURATION", help="Remove the instance once its check is critical this long.")
    ] = None,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
) -> None:
    """Register a service instance, optionally with one health check accord runs (HTTP, TCP) or waits for (TTL)."""
    if sum(option is not None for option in (http, tcp, ttl)) > 1:
        raise InputError("give at most one of --http, --tcp, --ttl")
    body: dict[str, Any] = {"Name": name, "ID": service_id or name, "Port": port, "Address": address, "Tags": tag or []}
    check: dict[str, Any] = {}
    if http is not None:
        check = {"HTTP": http, "Interval": interval}
    elif tcp is not None:
        check = {"TCP": tcp, "Interval": interval}
    elif ttl is not None:
        check = {"TTL": ttl}
    if check and deregister_after:
        check["DeregisterCriticalServiceAfter"] = deregister_after
    if check:
        body["Check"] = check
    async with open_consul(db_url, redis_url, read_only=False) as consul:
        await consul.register(body)
    output.note(f"registered {json.dumps(body['ID'])} as an instance of {json.dumps(name)}")


@services_app.command("deregister")
@run
async def services_deregister(
    service_id: Annotated[str, typer.Argument(metavar="ID", help="The instance ID (not the service name).")],
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
) -> None:
    """Remove a service instance and its checks."""
    async with open_consul(db_url, redis_url, read_only=False) as consul:
        await consul.deregister(service_id)
    output.note(f"deregistered {json.dumps(service_id)}")


@run
async def health(
    name: Name,
    passing: Annotated[bool, typer.Option("--passing", help="Only instances whose every check passes.")] = False,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
    json_out: Json = False,
) -> None:
    """The instances of a service with the status and output of each check."""
    async with open_consul(db_url, redis_url, read_only=True) as consul:
        instances = await consul.health(name, passing=passing)
    rows = [
        {
            "id": entry["Service"]["ID"],
            "address": entry["Service"].get("Address") or entry["Node"].get("Address", ""),
            "port": entry["Service"].get("Port"),
            "status": _aggregate(entry.get("Checks", [])),
            "checks": [
                {"id": c["CheckID"], "status": c["Status"], "output": c.get("Output", "")}
                for c in entry.get("Checks", [])
            ],
        }
        for entry in instances
    ]
    if json_out:
        output.print_json(rows)
        return
    if not rows:
        output.note(f"no {'passing ' if passing else ''}instances of {json.dumps(name)}")
    table = output.plain_table(["INSTANCE", "ADDRESS", "STATUS", "CHECKS"])
    for row in rows:
        checks = "; ".join(f"{c['id']}: {c['status']}" for c in row["checks"])
        table.add_row(row["id"], f"{row['address']}:{row['port']}", row["status"], checks)
    output.console.print(table)


@run
async def service_url(
    name: Name,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
) -> None:
    """Print the URL a client would use for a service: the KV pin services/NAME/url, else a passing instance's."""
    from accord.registry.discovery import DEFAULT_PIN_PREFIX, candidate_urls

    async with open_consul(db_url, redis_url, read_only=True) as consul:
        entry = await consul.kv_get(f"{DEFAULT_PIN_PREFIX}{name}/url")
        pin = decoded_value(entry) if entry else b""
        urls = candidate_urls(pin, [] if pin.strip() else await consul.health(name, passing=True))
        if not urls:
            raise NotFoundError(
                f"service {json.dumps(name)}: no URL at {DEFAULT_PIN_PREFIX}{name}/url and no passing instance"
            )
    output.line(urls[0])
