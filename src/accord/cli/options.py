"""Options shared by the commands."""

from __future__ import annotations

from typing import Annotated

import typer

DbUrl = Annotated[
    str | None,
    typer.Option(
        "--db-url",
        envvar="ACCORD_DB_URL",
        help=(
            "Database URL (sqlite:///path, postgresql://..., or a plain path to a SQLite file). "
            "Not used when ACCORD_ADDR names a server."
        ),
        show_default="the embedded ./accord.db",
    ),
]
DirectDbUrl = Annotated[
    str | None,
    typer.Option(
        "--db-url",
        envvar="ACCORD_DB_URL",
        help=(
            "Database URL (sqlite:///path, postgresql://..., or a plain path to a SQLite file). "
            "This command always works on the database."
        ),
        show_default="the embedded ./accord.db",
    ),
]
RedisUrl = Annotated[str | None, typer.Option("--redis-url", envvar="ACCORD_REDIS_URL", help="Redis URL, if any.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
