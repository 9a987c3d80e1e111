"""``accord vault mask|unmask|stats`` and ``accord proxy``: the vault on the terminal, and the masking LLM proxy.

``accord vault`` works on the database (and Redis) directly; ``accord proxy`` does too, or, with
ACCORD_ADDR and ACCORD_TOKEN and no database URL, masks through a server's /api/vault (docs/remote.md).
Custom patterns and retention come from the shared ``vault.*`` settings, as in every proxy instance.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from accord.cli import output
from accord.cli.errors import InputError, fail, run
from accord.cli.options import DirectDbUrl, Json, RedisUrl
from accord.core import environ
from accord.core.errors import AccordError
from accord.vault import Vault, VaultStats
from accord.vault.shared import SharedVault
from accord.vault.types import DEFAULT_SCOPE

__all__ = ["proxy", "vault_app"]

vault_app = typer.Typer(
    help="Mask and unmask text with the shared vault, and count its mappings.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Source = Annotated[str, typer.Argument(help="File to read; - (the default) reads standard input.")]
Scope = Annotated[str, typer.Option("--scope", "-s", help="Vault scope: the same value gets the same token in it.")]


@asynccontextmanager
async def open_vault(db_url: str | None, redis_url: str | None, *, read_only: bool = False) -> AsyncIterator[Vault]:
    """The vault on the shared store, following its vault.* settings (custom patterns, retention)."""
    from accord.cli.backend import name_database
    from accord.cli.backend.direct import require_database
    from accord.store.engine import normalize_url, redact, resolve_db_url

    if read_only:
        require_database(db_url)
    timeout = environ.current().start_timeout
    opened = SharedVault.from_url(db_url, redis_url, watch=False, use_env=False, sweep=False, start_timeout=timeout)
    async with await opened as shared:
        yield shared.vault
    name_database(redact(normalize_url(resolve_db_url(db_url))))


def read_source(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None


def write_text(text: str) -> None:
    """Exactly the text, no newline added, so mask and unmask round-trip a file byte for byte."""
    sys.stdout.write(text)
    sys.stdout.flush()


@vault_app.command("mask")
@run
async def mask(
    source: Source = "-",
    scope: Scope = DEFAULT_SCOPE,
    json_out: Json = False,
    reveal: Annotated[bool, typer.Option("--reveal", help="With --json, show the originals (else ****).")] = False,
    db_url: DirectDbUrl = None,
    redis_url: RedisUrl = None,
) -> None:
    """Print the text with every detected value replaced by its token (the same token on every instance)."""
    data = read_source(source)
    async with open_vault(db_url, redis_url) as vault:
        result = await vault.mask(data, scope)
    if json_out:
        shown = {token: original if reveal else "****" for token, original in result.mappings.items()}
        output.print_json({"text": result.text, "mappings": shown})
    else:
        write_text(result.text)


@vault_app.command("unmask")
@run
async def unmask(
    source: Source = "-",
    scope: Scope = DEFAULT_SCOPE,
    db_url: DirectDbUrl = None,
    redis_url: RedisUrl = None,
) -> None:
    """Print the text with every token of the scope replaced by its original (unknown and expired ones stay)."""
    data = read_source(source)
    async with open_vault(db_url, redis_url) as vault:
        write_text(await vault.unmask(data, scope))


@vault_app.command("stats")
@run
async def stats(
    scope: Annotated[str | None, typer.Option("--scope", "-s", help="Count one scope's mappings only.")] = None,
    json_out: Json = False,
    db_url: DirectDbUrl = None,
    redis_url: RedisUrl = None,
) -> None:
    """Live mappings per token type, expired mappings, and unmask misses (tokens with no live mapping)."""
    async with open_vault(db_url, redis_url, read_only=True) as vault:
        numbers = await vault.stats(scope)
    if json_out:
        output.print_json(stats_row(numbers))
    else:
        output.console.print(stats_table(numbers))


def stats_row(numbers: VaultStats) -> dict[str, object]:
    return {
        "mappings": numbers.mappings,
        "total": numbers.total,
        "expired": numbers.expired,
        "unmask_misses": numbers.unmask_misses,
        "unmask_expired": numbers.unmask_expired,
    }


def stats_table(numbers: VaultStats) -> Table:
    table = Table(show_edge=False, header_style="bold")
    table.add_column("token type")
    table.add_column("live mappings", justify="right")
    for token_type, count in numbers.mappings.items():
        table.add_row(token_type, str(count))
    table.add_section()
    table.add_row("total", str(numbers.total))
    table.add_row("expired", str(numbers.expired))
    table.add_row("unmask misses", str(numbers.unmask_misses))
    table.add_row("  of them expired", str(numbers.unmask_expired))
    return table


def proxy(
    upstream: Annotated[
        str,
        typer.Option(
            "--upstream",
            envvar="ACCORD_PROXY_UPSTREAM",
            help="Base URL of the model API, e.g. https://api.openai.com or https://api.anthropic.com.",
        ),
    ],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8600,
    timeout: Annotated[
        float, typer.Option(min=0.001, help="Seconds the upstream may take to answer (and between streamed chunks).")
    ] = 60.0,
    scope: Scope = DEFAULT_SCOPE,
    db_url: DirectDbUrl = None,
    redis_url: RedisUrl = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    require_token: Annotated[
        bool | None,
        typer.Option(
            "--require-token/--no-require-token",
            help="Callers send an accord token (X-Accord-Token) with write on vault/<scope>/. "
            "Default: ACCORD_PROXY_REQUIRE_TOKEN, else off.",
        ),
    ] = None,
    max_mappings: Annotated[
        int, typer.Option(min=1, help="Most distinct values one request may have masked (new mappings).")
    ] = 1000,
    max_answer: Annotated[int, typer.Option(min=1, help="Largest upstream answer, in bytes (a stream's total).")] = (
        32 * 1024 * 1024
    ),
) -> None:
    """Run the masking LLM proxy: OpenAI POST /v1/chat/completions and Anthropic POST /v1/messages.

    Every text the model reads is masked before it leaves, and the answer (streamed or not) is unmasked.
    Run any number of proxies on one database and Redis: they share one vault.
    """
    import uvicorn

    from accord.proxy import create_proxy_app

    try:
        from accord.core import environ

        guarded = require_token if require_token is not None else environ.current().proxy_require_token
        app = create_proxy_app(
            upstream,
            db_url=db_url,
            redis_url=redis_url,
            scope=scope,
            timeout=timeout,
            require_token=guarded,
            max_mappings=max_mappings,
            max_answer=max_answer,
        )
    except AccordError as exc:
        fail(exc.detail)
        raise typer.Exit(2) from None
    uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=False)
