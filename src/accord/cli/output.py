"""Printing for people (Rich tables) and for scripts (``--json``), with secrets always masked."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=_default, ensure_ascii=False) + "\n")


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set):
        return sorted(value)
    return str(value)


def settings_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(show_edge=False, header_style="bold")
    for column in ("path", "value", "type", "source", "version", "revision"):
        table.add_column(column, overflow="fold")
    for row in rows:
        source = row["source"] + (" (pinned)" if row["pinned"] else "")
        if row["shadowed_env"]:
            source += f" (shadows ${row['shadowed_env']})"
        table.add_row(
            row["path"], as_text(row["value"]), row["type"], source, str(row["version"]), str(row["mod_revision"])
        )
    return table


def history_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(show_edge=False, header_style="bold")
    for column in ("version", "revision", "op", "value", "actor", "at"):
        table.add_column(column, overflow="fold")
    for row in rows:
        at = row["at"].strftime("%Y-%m-%d %H:%M:%S") if isinstance(row["at"], datetime) else str(row["at"] or "")[:19]
        value = "" if row["op"] == "delete" else as_text(row["value"])
        table.add_row(str(row["version"]), str(row["revision"]), row["op"], value, row["actor"], at)
    return table


def as_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
