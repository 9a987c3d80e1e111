"""Day one with the CLI (issue 8 item 9): read-only commands never create a database, every command
names the database it used, and a plain file path in ACCORD_DB_URL is a SQLite file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import accord
from tests.cli.cli_helpers import ACCORD, Llm, cli_env

READ_ONLY = [
    ("config", "list"),
    ("config", "list", "--json"),
    ("config", "get", "llm.model"),
    ("config", "get", "llm.model", "--json"),
    ("config", "history", "llm.model"),
    ("config", "diff", "--from-revision", "0"),
    ("config", "export"),
    ("config", "import", "values.json", "--dry-run"),
    ("status",),
    ("status", "--json"),
    ("audit",),
    ("token", "list"),
    ("token", "list", "--json"),
    ("vault", "stats"),
    ("secrets", "rotate-key", "--dry-run"),
]


def accord_in(cwd: Path, *args: str, db: str | None = None) -> subprocess.CompletedProcess[str]:
    """`accord ARGS` run in ``cwd``, with ACCORD_DB_URL set only when ``db`` is given."""
    done = subprocess.run(
        [ACCORD, *args], cwd=cwd, env=cli_env(db=db), capture_output=True, text=True, timeout=90, check=False
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _missing(done: subprocess.CompletedProcess[str], path: Path) -> None:
    assert done.returncode == 4, (done.args, done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: no database at {path}:"), lines[0]
    assert "accord serve" in lines[0] and "--db-url" in lines[0], lines[0]
    assert done.stdout == ""


@pytest.mark.parametrize("args", READ_ONLY, ids=lambda args: "-".join(args))
def test_read_only_command_in_an_empty_directory_creates_nothing(tmp_path: Path, args: tuple[str, ...]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    if "import" in args:
        (empty / "values.json").write_text('{"llm.model": "x"}')
    before = sorted(p.name for p in empty.iterdir())
    _missing(accord_in(empty, *args), empty / "accord.db")
    assert sorted(p.name for p in empty.iterdir()) == before, "a read-only command created a file"


@pytest.mark.parametrize("form", ["url", "absolute", "relative"])
def test_a_named_missing_database_is_named_and_not_created(tmp_path: Path, form: str) -> None:
    target = tmp_path / "other.db"
    db = {"url": f"sqlite:///{target}", "absolute": str(target), "relative": "./other.db"}[form]
    _missing(accord_in(tmp_path, "config", "list", db=db), target)
    assert not target.exists()


async def test_a_plain_path_in_accord_db_url_is_a_sqlite_file(tmp_path: Path) -> None:
    target = tmp_path / "x.db"
    async with await accord.connect(f"sqlite:///{target}", "", groups=[Llm], watch=False) as cfg:
        await cfg.set("llm.timeout_s", 45)
    for db in (str(target), "./x.db", "x.db"):
        done = accord_in(tmp_path, "config", "get", "llm.timeout_s", "--json", db=db)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["value"] == 45
        assert done.stderr.strip().splitlines()[-1] == f"database: sqlite+aiosqlite:///{target}"
    by_option = accord_in(tmp_path, "config", "set", "llm.timeout_s", "50", "--db-url", "x.db")
    assert by_option.returncode == 0, by_option.stderr
    assert (
        json.loads(accord_in(tmp_path, "config", "get", "llm.timeout_s", "--json", db=str(target)).stdout)["value"]
        == 50
    )


async def test_every_command_names_its_database(tmp_path: Path, pg_url: str) -> None:
    sqlite = tmp_path / "named.db"
    with_password = pg_url.replace("postgres@", "postgres:hunter2@")  # the test cluster trusts local logins
    assert with_password != pg_url
    for url in (f"sqlite:///{sqlite}", with_password):
        async with await accord.connect(url, "", groups=[Llm], watch=False) as cfg:
            await cfg.set("llm.timeout_s", 45)
            shown = cfg.store.url
        assert "hunter2" not in shown
        for args in (
            ("config", "list", "--json"),
            ("config", "list"),
            ("config", "set", "llm.model", "claude"),
            ("config", "history", "llm.model", "--json"),
            ("token", "list", "--json"),
        ):
            done = accord_in(tmp_path, *args, db=url)
            assert done.returncode == 0, (args, done.stderr)
            assert done.stderr.strip().splitlines()[-1] == f"database: {shown}", (args, done.stderr)
            assert "hunter2" not in done.stdout + done.stderr
        listed = accord_in(tmp_path, "config", "list", "--json", db=url)
        assert any(row["path"] == "llm.model" for row in json.loads(listed.stdout))  # stdout stays pure JSON
