"""``accord token ...``: bearer tokens with prefix rules, on the database or over /api/tokens."""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer

from accord.cli import output
from accord.cli.backend import MAX_TTL_S, TokenRequest, name_database, open_backend, server_address
from accord.cli.errors import InputError, run
from accord.cli.options import DbUrl, DirectDbUrl, Json, RedisUrl

token_app = typer.Typer(help="Create, list and revoke API tokens (prefix rules, longest prefix wins).")
_TTL = re.compile(r"^(?P<n>[1-9][0-9]{0,9})(?P<unit>[smhdw]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@token_app.command("bootstrap")
@run
async def token_bootstrap(db_url: DirectDbUrl = None, redis_url: RedisUrl = None) -> None:
    """Create a new management token and print it as the only line on stdout.

    Always works on the database itself (ACCORD_DB_URL), never over HTTP, even when ACCORD_ADDR is set: it is how an operator with database access gets back in. Running servers accept the token within moments.
    """  # noqa: E501 - Typer joins lines of a paragraph badly, so each paragraph is one line
    from accord.cli.backend.direct import DirectBackend

    backend = await DirectBackend.open(db_url, redis_url)
    try:
        name, secret = await backend.bootstrap_token()
    finally:
        await backend.aclose()
    output.line(secret)
    output.note(f"created management token {json.dumps(name)}; it is shown once, only its hash is stored")
    name_database(backend.database)
    if server_address():
        output.note("(ACCORD_ADDR is ignored here: bootstrap always writes to the database)")


@token_app.command("create")
@run
async def token_create(
    name: Annotated[str, typer.Option("--name", help="Unique name; it is the actor in audit records.")],
    rules: Annotated[
        list[str] | None,
        typer.Option("--rule", help="PREFIX=read|write|deny on store keys, e.g. config/llm/=write (repeatable)."),
    ] = None,
    reveal_secrets: Annotated[
        bool, typer.Option("--reveal-secrets", help="May read secrets in full (with ?reveal=true).")
    ] = False,
    ttl: Annotated[str | None, typer.Option("--ttl", help="Lifetime, e.g. 30d, 12h, 90m, 3600s.")] = None,
    db_url: DbUrl = None,
    redis_url: RedisUrl = None,
    json_out: Json = False,
) -> None:
    """Create a token. Its secret is printed once: alone on stdout, or as "secret" with --json."""
    request = TokenRequest(name, tuple(rules or ()), reveal_secrets, parse_ttl(ttl) if ttl else None)
    async with open_backend(db_url, redis_url) as backend:
        row = await backend.create_token(request)
    if json_out:
        output.print_json(row)
        return
    output.line(row["secret"])
    for warning in _warnings(request.rules):
        output.note(f"warning: {warning}")
    rules_text = ", ".join(row["rules"]) or "none (denies everything)"
    output.note(
        f"created token {json.dumps(row['name'])} with rules: {rules_text}. "
        "The secret above is shown once; store it now."
    )


@token_app.command("list")
@run
async def token_list(db_url: DbUrl = None, redis_url: RedisUrl = None, json_out: Json = False) -> None:
    """List tokens with their rules (never their secrets)."""
    async with open_backend(db_url, redis_url, read_only=True) as backend:
        rows = await backend.tokens()
    if json_out:
        output.print_json(rows)
    elif rows:
        output.console.print(output.tokens_table(rows))
    else:
        output.note("no tokens")


@token_app.command("revoke")
@run
async def token_revoke(name: str, db_url: DbUrl = None, redis_url: RedisUrl = None, json_out: Json = False) -> None:
    """Revoke a token; every server refuses it within moments."""
    async with open_backend(db_url, redis_url) as backend:
        row = await backend.revoke_token(name)
    if json_out:
        output.print_json(row)
    else:
        output.line(f"revoked token {row['name']}")


def _warnings(rules: tuple[str, ...]) -> list[str]:
    """The server's warnings, computed here too so a direct (database) create warns the same way."""
    from accord.auth.policy import boundary_warnings, parse_rule

    return boundary_warnings(tuple(parse_rule(rule) for rule in rules))


def parse_ttl(text: str) -> int:
    """``30d``, ``12h``, ``90m``, ``3600s`` or plain seconds, up to ten years."""
    match = _TTL.match(text.strip().lower())
    if not match:
        raise InputError(f"invalid --ttl {json.dumps(text)}: use a number with s, m, h, d or w, e.g. 30d or 12h")
    seconds = int(match["n"]) * _UNIT_S[match["unit"]]
    if seconds > MAX_TTL_S:
        raise InputError(f"--ttl {text} is longer than ten years")
    return seconds
