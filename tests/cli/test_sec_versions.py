"""Versions never restart, and rollback takes a revision as well as a version (issue 8, item 12), through the
CLI as a subprocess on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import pytest

import accord
from tests.cli.cli_helpers import run_cli
from tests.config.procs_worker import Knobs


def cli_json(db: str, *args: str) -> dict[str, object]:
    answer: dict[str, object] = json.loads(run_cli(*args, "--json", db=db).stdout)
    return answer


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
async def test_set_after_unset_continues_the_versions_and_rollback_takes_a_revision(
    engine: str, request: pytest.FixtureRequest
) -> None:
    db: str = request.getfixturevalue("sqlite_url" if engine == "sqlite" else "pg_url")
    async with await accord.connect(db, "", groups=[Knobs], watch=False):
        pass
    first = await asyncio.to_thread(cli_json, db, "config", "set", "knobs.level", "1")
    second = await asyncio.to_thread(cli_json, db, "config", "set", "knobs.level", "2")
    await asyncio.to_thread(run_cli, "config", "unset", "knobs.level", db=db)
    again = await asyncio.to_thread(cli_json, db, "config", "set", "knobs.level", "3")
    assert (first["version"], second["version"], again["version"]) == (1, 2, 4), "the delete was version 3"
    back = await asyncio.to_thread(
        cli_json, db, "config", "rollback", "knobs.level", "--to-revision", str(first["mod_revision"])
    )
    assert back["value"] == 1 and back["version"] == 5
    by_version = await asyncio.to_thread(cli_json, db, "config", "rollback", "knobs.level", "--to-version", "2")
    assert by_version["value"] == 2 and by_version["version"] == 6
    both = await asyncio.to_thread(
        run_cli, "config", "rollback", "knobs.level", "--to-version", "1", "--to-revision", "1", db=db, code=None
    )
    assert both.returncode != 0 and "exactly one" in both.stderr
