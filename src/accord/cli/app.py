"""``accord``: the command line. Every command here adapts one library call to the terminal."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

import accord
from accord.cli import output
from accord.config.admin import ConfigAdmin, Row
from accord.config.connect import connect
from accord.config.live import LiveConfig
from accord.config.migrate import load_legacy_file
from accord.core import errors as e

P = ParamSpec("P")
T = TypeVar("T")

app = typer.Typer(
    help="accord: shared, versioned, live configuration for services that run as many instances.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(help="Read and change typed settings (the store's config/ namespace).", no_args_is_help=True)
app.add_typer(config_app, name="config")

DbUrl = Annotated[
    str | None,
    typer.Option(
        "--db-url",
        envvar="ACCORD_DB_URL",
        help="Database URL (sqlite:///path or postgresql://...).",
        show_default="the embedded ./accord.db",
    ),
]
RedisUrl = Annotated[str | None, typer.Option("--redis-url", envvar="ACCORD_REDIS_URL", help="Redis URL, if any.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]

EXIT_CODES: list[tuple[type[e.AccordError], int]] = [
    (e.ValidationFailedError, 2),
    (e.InvalidKeyError, 2),
    (e.ValueTooLargeError, 2),
    (e.UnknownSettingError, 2),
    (e.ConfigFileError, 2),
    (e.ConflictError, 3),
    (e.NotFoundError, 4),
    (e.StoreUnavailableError, 5),
]


def exit_code(exc: e.AccordError) -> int:
    return next((code for cls, code in EXIT_CODES if isinstance(exc, cls)), 1)


def run(fn: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async command; an accord error becomes one line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            asyncio.run(fn(*args, **kwargs))
        except e.AccordError as exc:
            output.err_console.print(f"[red]error:[/red] {exc.detail}", highlight=False, markup=True)
            raise typer.Exit(exit_code(exc)) from None

    return wrapper


async def with_config(db_url: str | None, redis_url: str | None, body: Callable[[LiveConfig], Awaitable[T]]) -> T:
    live = await connect(db_url, redis_url or "", watch=False, use_env=False, start_timeout=_start_timeout())
    try:
        return await body(live)
    finally:
        await live.aclose()


def _start_timeout() -> float:
    return float(os.environ.get("ACCORD_START_TIMEOUT", "10"))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"accord {accord.__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what accord does to stderr.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (8500 is Consul's, so Consul clients find accord).")] = 8500,
    workers: Annotated[int, typer.Option(min=1, help="Server processes sharing this port and the store.")] = 1,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the accord server: the /api of settings, tokens and audit, plus /healthz, /readyz, /metrics.

    On first start, with no token in the store, it creates a management token and prints it once.
    """
    import uvicorn

    if db_url:
        os.environ["ACCORD_DB_URL"] = db_url
    if redis_url is not None:
        os.environ["ACCORD_REDIS_URL"] = redis_url
    uvicorn.run(
        "accord.server.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        proxy_headers=False,
    )


@app.command()
@run
async def status(db_url: DbUrl = None, redis_url: RedisUrl = None, json_out: Json = False) -> None:
    """Show the store this command would use: database, revision, settings registered, bus."""

    async def body(live: LiveConfig) -> None:
        info = {"store": live.store.url, **live.status(), "settings": len(live.registry.by_path)}
        if json_out:
            output.print_json(info)
        else:
            for name, value in info.items():
                output.console.print(f"[bold]{name:>15}[/bold]  {value}", highlight=False)

    await with_config(db_url, redis_url, body)


@config_app.command("list")
@run
async def config_list(
    prefix: Annotated[str, typer.Option("--prefix", "-p", help="Only settings whose dotted path starts so.")] = "",
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
    json_out: Json = False,
) -> None:
    """List settings with their value (secrets masked), type, source and version."""

    async def body(live: LiveConfig) -> None:
        rows = ConfigAdmin(live).settings(prefix=prefix)
        if json_out:
            output.print_json(rows)
        elif rows:
            output.console.print(output.settings_table(rows))
        else:
            output.err_console.print("no settings registered" + (f" under {prefix!r}" if prefix else ""))

    await with_config(db_url, redis_url, body)


@config_app.command("get")
@run
async def config_get(path: str, db_url: DbUrl = None, redis_url: RedisUrl = None, json_out: Json = False) -> None:
    """Show one setting (PATH is category.name)."""

    async def body(live: LiveConfig) -> None:
        row = ConfigAdmin(live).setting_row(path)
        if json_out:
            output.print_json(row)
        else:
            output.console.print(output.settings_table([row]))

    await with_config(db_url, redis_url, body)


@config_app.command("set")
@run
async def config_set(
    path: str,
    value: Annotated[str, typer.Argument(help="The value as you would type it: text raw, numbers, true/false, JSON.")],
    expect_version: Annotated[
        int | None, typer.Option("--expect-version", help="Only write if the stored version is this (0: create only).")
    ] = None,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
    json_out: Json = False,
) -> None:
    """Validate and store a new value; every running instance sees it."""

    async def body(live: LiveConfig) -> None:
        _report(await ConfigAdmin(live).set_input(path, value, expect_version=expect_version), json_out)

    await with_config(db_url, redis_url, body)


@config_app.command("unset")
@run
async def config_unset(path: str, db_url: DbUrl = None, redis_url: RedisUrl = None, json_out: Json = False) -> None:
    """Remove the stored value; the setting falls back to its environment variable or default."""

    async def body(live: LiveConfig) -> None:
        _report(await ConfigAdmin(live).unset(path), json_out)

    await with_config(db_url, redis_url, body)


@config_app.command("history")
@run
async def config_history(
    path: str,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="Show at most this many versions.")] = None,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
    json_out: Json = False,
) -> None:
    """Show every stored version of a setting, newest first."""

    async def body(live: LiveConfig) -> None:
        rows = await ConfigAdmin(live).history(path, limit=limit)
        if json_out:
            output.print_json(rows)
        else:
            output.console.print(output.history_table(rows))

    await with_config(db_url, redis_url, body)


@config_app.command("rollback")
@run
async def config_rollback(
    path: str,
    to_version: Annotated[int, typer.Option("--to-version", help="The version whose value to restore.")],
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
    json_out: Json = False,
) -> None:
    """Restore an earlier version's value as a new version (history is never rewritten)."""

    async def body(live: LiveConfig) -> None:
        _report(await ConfigAdmin(live).rollback(path, to_version), json_out)

    await with_config(db_url, redis_url, body)


@config_app.command("migrate")
@run
async def config_migrate(
    file: Annotated[str, typer.Argument(help="A legacy config.json (nested sections become dotted paths).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would change; write nothing.")] = False,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
    json_out: Json = False,
) -> None:
    """Import a legacy config.json, un-escaping old multi-escaped values; all or nothing."""
    data = load_legacy_file(file)

    async def body(live: LiveConfig) -> None:
        report = await ConfigAdmin(live).migrate(data, dry_run=dry_run)
        if json_out:
            output.print_json(report)
            return
        verb = "would migrate" if dry_run else "migrated"
        output.console.print(
            f"{verb} {len(report['migrated'])}, unchanged {len(report['unchanged'])}, "
            f"skipped unknown {len(report['skipped_unknown'])}",
            highlight=False,
        )
        for path, value in report["migrated"].items():
            output.console.print(f"  [green]{verb}[/green] {path} = {value!r}", highlight=False)
        for path in report["skipped_unknown"]:
            output.console.print(f"  [yellow]skipped unknown[/yellow] {path}", highlight=False)

    await with_config(db_url, redis_url, body)


def _report(row: Row, json_out: bool) -> None:
    if json_out:
        output.print_json(row)
        return
    output.console.print(
        f"{row['path']} = {output.as_text(row['value'])}  (version {row['version']}, "
        f"revision {row['mod_revision']}, source {row['source']})",
        highlight=False,
    )


def main() -> None:
    app()
