"""``accord``: the command line. Every command adapts one library call (or one /api call) to the terminal.

With ACCORD_ADDR set the commands talk to that server over HTTP (ACCORD_TOKEN is the bearer token);
otherwise they work on the database directly. Both ways print the same thing.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from typer._click import exceptions as click_exceptions  # Typer bundles its own click

import accord
from accord.cli.backend import AuditQuery, open_backend
from accord.cli.errors import EXIT_HELP, InputError, run
from accord.cli.lazy import LazyGroup
from accord.cli.options import DbUrl, Json, RedisUrl

# config, token, secrets, vault and proxy are registered in cli/lazy.py and imported on first use.
app = typer.Typer(
    cls=LazyGroup,
    help="accord: shared, versioned, live configuration for services that run as many instances.",
    epilog=EXIT_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


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
    import logging

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (8500 is Consul's, so Consul clients find accord).")] = 8500,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            show_default="the CPUs this process may use (cgroup quota and affinity), at most 8",
            help="Server processes sharing this port and the store.",
        ),
    ] = None,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
    log_level: Annotated[
        str, typer.Option(help="Log level of the server and of accord itself (debug, info, warning, error).")
    ] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request (uvicorn's access log).")] = True,
    events: Annotated[
        bool, typer.Option("--events", help="Also run the events consumer (as `accord events consume` does).")
    ] = False,
    events_consumer: Annotated[
        str | None, typer.Option(help="With --events: the consumer's name (default: the host name).")
    ] = None,
) -> None:
    """Run the accord server: the /api of settings, tokens and audit, plus /healthz, /readyz, /metrics.

    On first start, with no token in the store, it creates a management token and prints it once.
    """
    from accord.server.run import AppFactory, ServeOptions, default_workers
    from accord.server.run import serve as run_server

    consumer = None
    if events:
        from accord.bus.redis_url import resolve_redis_url
        from accord.events.consumer import ConsumerOptions

        if resolve_redis_url(redis_url) is None:
            raise typer.BadParameter(
                "the events consumer reads a Redis stream: set ACCORD_REDIS_URL", param_hint="--events"
            )

        consumer = ConsumerOptions(events_consumer) if events_consumer else ConsumerOptions()
    factory = AppFactory(db_url or None, redis_url, events=consumer)
    run_server(factory, ServeOptions(host, port, workers or default_workers(), log_level, access_log))


@app.command()
@run
async def status(db_url: DbUrl = None, redis_url: RedisUrl = None, json_out: Json = False) -> None:
    """Show what this command would use: the database (or the server), its revision, settings, bus."""
    from accord.cli import output

    async with open_backend(db_url, redis_url, read_only=True) as backend:
        info = await backend.status()
    if json_out:
        output.print_json(info)
        return
    for name, value in info.items():
        output.console.print(f"[bold]{name:>15}[/bold]  {value}", highlight=False, soft_wrap=True)


@app.command()
@run
async def instances(db_url: DbUrl = None, redis_url: RedisUrl = None, json_out: Json = False) -> None:
    """List the running instances (applications, server replicas) with the revision each applied and its lag."""
    from accord.cli import output

    async with open_backend(db_url, redis_url, read_only=True) as backend:
        rows = await backend.instances()
    if json_out:
        output.print_json(rows)
    elif rows:
        output.console.print(output.instances_table(rows))
    else:
        output.note("no running instances")


@app.command()
@run
async def audit(
    prefix: Annotated[str, typer.Option("--prefix", "-p", help="Store key prefix, e.g. config/llm/ or acl/.")] = "",
    actor: Annotated[str | None, typer.Option("--actor", help="Only changes by this actor (token name).")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Only this action: set, delete, rollback, import, token.create…")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only changes at or after this ISO time (UTC if no offset).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="At most this many records.")] = 100,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
    json_out: Json = False,
) -> None:
    """Who changed what and when, newest first, with old and new values masked."""
    from accord.cli import output

    query = AuditQuery(prefix, actor, action, parse_since(since) if since else None, limit)
    async with open_backend(db_url, redis_url, read_only=True) as backend:
        rows = await backend.audit(query)
    if json_out:
        output.print_json(rows)
    elif rows:
        output.console.print(output.audit_table(rows))
    else:
        output.note("no audit records match")


def parse_since(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"invalid --since {json.dumps(text)}: use an ISO time such as 2025-01-31 or 2025-01-31T12:00:00Z"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def main() -> None:
    # httpx imports its own command line (click, rich.syntax, pygments: ~40 ms) unless that import fails;
    # this process never runs it, so it gets the stub httpx defines for a missing one.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    try:
        code = app(standalone_mode=False)
    except click_exceptions.NoArgsIsHelpError as exc:
        exc.show()  # `accord config` alone: its help, as before
        sys.exit(exc.exit_code)
    except click_exceptions.UsageError as exc:
        sys.stderr.write(usage_error_line(exc) + "\n")
        sys.exit(exc.exit_code)
    except click_exceptions.ClickException as exc:
        sys.stderr.write(f"error: {exc.format_message()}\n")
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("error: aborted\n")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def usage_error_line(exc: click_exceptions.UsageError) -> str:
    """A usage error as the one line docs/cli.md documents: what is wrong, and where the help is."""
    message = " ".join(exc.format_message().split())
    where = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
    return f"error: {message}{where}"
