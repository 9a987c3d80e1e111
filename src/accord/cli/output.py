"""Printing for people (Rich tables) and for scripts (``--json``), with secrets always masked."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from accord.core.times import iso_utc

console = Console()
err_console = Console(stderr=True)


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=_default, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def line(text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def note(text: str) -> None:
    """Something for the person at the terminal, on stderr so stdout stays clean for scripts."""
    err_console.print(text, highlight=False, markup=False, soft_wrap=True)


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, set):
        return sorted(value)
    return str(value)


def _table(columns: Iterable[str]) -> Table:
    table = Table(show_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def plain_table(columns: Iterable[str]) -> Table:
    """A table in the house style, for commands that fill their own rows."""
    return _table(columns)


def settings_table(rows: list[dict[str, Any]]) -> Table:
    table = _table(("path", "value", "type", "source", "version", "revision", "declared"))
    for row in rows:
        source = row["source"] + (" (pinned)" if row["pinned"] else "")
        if row["shadowed_env"]:
            source += f" (shadows ${row['shadowed_env']})"
        declared = f"{row.get('declared_by') or ''} {row.get('declared_at') or ''}".strip()
        cells = (as_text(row["value"]), row["type"], source, str(row["version"]), str(row["mod_revision"]), declared)
        table.add_row(row["path"], *cells)
    return table


def instances_table(rows: list[dict[str, Any]]) -> Table:
    table = _table(("service", "host", "pid", "applied", "lag", "state", "heartbeat", "version", "id"))
    for row in rows:
        state = "stale" if row["stale"] else "live"
        cells = (row["host"], str(row["pid"]), str(row["applied_revision"]), str(row["lag"]), state)
        table.add_row(row["service"], *cells, when(row["heartbeat_at"]), row["version"], row["id"])
    return table


def history_table(rows: list[dict[str, Any]]) -> Table:
    table = _table(("version", "revision", "op", "value", "actor", "at"))
    for row in rows:
        value = "" if row["op"] == "delete" else as_text(row["value"])
        table.add_row(str(row["version"]), str(row["revision"]), row["op"], value, row["actor"], when(row["at"]))
    return table


def changes_table(rows: list[dict[str, Any]], *, revision: bool = False) -> Table:
    """Diff and import rows: path, old and new value (masked), and the revision of the change if known."""
    table = _table(("path", "old", "new", *(("revision",) if revision else ())))
    for row in rows:
        new = optional(row["new"]) + (f" ({row['note']})" if row.get("note") else "")
        cells = [row["path"], optional(row["old"]), new]
        table.add_row(*cells, *((str(row["revision"]),) if revision else ()))
    return table


def audit_table(rows: list[dict[str, Any]]) -> Table:
    table = _table(("revision", "at", "actor", "action", "key", "old", "new"))
    for row in rows:
        new = "(deleted)" if row["op"] == "delete" else optional(row["new"])
        table.add_row(
            str(row["revision"]),
            when(row["at"]),
            row["actor"],
            row["action"] or row["op"],
            row["path"] or row["key"],
            optional(row["old"]),
            new,
        )
    return table


def tokens_table(rows: list[dict[str, Any]]) -> Table:
    table = _table(("name", "rules", "reveal secrets", "created", "created by", "expires", "accessor"))
    for row in rows:
        expires = when(row["expires_at"]) + (" (expired)" if row["expired"] else "")
        table.add_row(
            row["name"],
            ", ".join(row["rules"]),
            "yes" if row["reveal_secrets"] else "no",
            when(row["created_at"]),
            row["created_by"],
            expires or "never",
            row["accessor"],
        )
    return table


def when(value: object) -> str:
    if isinstance(value, datetime):
        return iso_utc(value, timespec="seconds")
    return str(value or "")


def as_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def optional(value: object) -> str:
    """A value that may be absent (nothing stored before, or after a delete): absent shows as blank."""
    return "" if value is None else as_text(value)
