"""The `accord` command as users run it: a real subprocess on a real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import accord
from accord import Setting, SettingsGroup

ACCORD = str(Path(sys.executable).with_name("accord"))


class Llm(SettingsGroup, category="llm"):
    model: str = Setting("gpt-4o", description="chat model")
    timeout_s: int = Setting(30, ge=1, le=600)
    api_key: str = Setting("", secret=True)
    stop: list[str] = Setting([])


def run_cli(db_url: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ACCORD_DB_URL": db_url, "ACCORD_START_TIMEOUT": "2", "COLUMNS": "200"}
    env.pop("ACCORD_REDIS_URL", None)
    proc = subprocess.run([ACCORD, *args], capture_output=True, text=True, env=env, timeout=60, check=False)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
async def db(sqlite_url: str) -> str:
    """A store where an application has registered the llm settings (as a deployed service would)."""
    async with await accord.connect(sqlite_url, "", groups=[Llm], watch=False) as cfg:
        await cfg.set("llm.api_key", "sk-live-0123456789abcdef")
    return sqlite_url


def test_version_and_help() -> None:
    version = subprocess.run([ACCORD, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"accord {accord.__version__}"
    helptext = subprocess.run([ACCORD, "config", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("list", "get", "set", "unset", "history", "rollback", "migrate"):
        assert command in helptext


def test_list_masks_secrets_in_table_and_json(db: str) -> None:
    table = run_cli(db, "config", "list").stdout
    assert "llm.timeout_s" in table and "sk-live-0123456789abcdef" not in table
    rows = {row["path"]: row for row in json.loads(run_cli(db, "config", "list", "--json").stdout)}
    assert rows["llm.api_key"]["value"] == "sk-l****cdef"
    assert rows["llm.timeout_s"] == {**rows["llm.timeout_s"], "value": 30, "source": "default", "version": 0}
    assert rows["llm.stop"]["type"] == "list[str]"
    only = json.loads(run_cli(db, "config", "list", "--prefix", "llm.t", "--json").stdout)
    assert [row["path"] for row in only] == ["llm.timeout_s"]


def test_set_get_history_rollback_unset(db: str) -> None:
    assert json.loads(run_cli(db, "config", "set", "llm.timeout_s", "45", "--json").stdout)["version"] == 1
    run_cli(db, "config", "set", "llm.timeout_s", "90")
    run_cli(db, "config", "set", "llm.stop", '["###", "END"]')
    got = json.loads(run_cli(db, "config", "get", "llm.timeout_s", "--json").stdout)
    assert (got["value"], got["version"], got["source"]) == (90, 2, "stored")
    assert json.loads(run_cli(db, "config", "get", "llm.stop", "--json").stdout)["value"] == ["###", "END"]
    history = json.loads(run_cli(db, "config", "history", "llm.timeout_s", "--json").stdout)
    assert [(h["version"], h["value"]) for h in history] == [(2, 90), (1, 45)]
    rolled = json.loads(run_cli(db, "config", "rollback", "llm.timeout_s", "--to-version", "1", "--json").stdout)
    assert (rolled["value"], rolled["version"]) == (45, 3)
    unset = json.loads(run_cli(db, "config", "unset", "llm.timeout_s", "--json").stdout)
    assert (unset["value"], unset["source"]) == (30, "default")


def test_bad_input_is_one_line_and_changes_nothing(db: str) -> None:
    before = run_cli(db, "config", "list", "--json").stdout
    cases = [
        (("config", "set", "llm.timeout_s", "601"), 2, "llm.timeout_s"),
        (("config", "set", "llm.timeout_s", "soon"), 2, "llm.timeout_s"),
        (("config", "set", "llm.stop", "[1, 2]"), 2, "llm.stop"),
        (("config", "set", "llm.nope", "1"), 2, 'unknown setting "llm.nope"'),
        (("config", "set", "not-a-path", "1"), 2, "not-a-path"),
        (("config", "set", "llm.timeout_s", "40", "--expect-version", "7"), 3, "conflict"),
        (("config", "rollback", "llm.timeout_s", "--to-version", "9"), 4, "version 9"),
    ]
    for args, code, needle in cases:
        proc = run_cli(db, *args, ok=False)
        assert proc.returncode == code, (args, proc.stderr)
        assert needle in proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert run_cli(db, "config", "list", "--json").stdout == before


def test_unreachable_database_names_it_without_traceback() -> None:
    proc = run_cli("postgresql://postgres:hunter2@127.0.0.1:1/nowhere", "config", "list", ok=False)
    assert proc.returncode == 5
    assert "127.0.0.1:1/nowhere" in proc.stderr and "hunter2" not in proc.stderr
    assert "Traceback" not in proc.stderr


def test_migrate_dry_run_then_real(db: str, tmp_path: Path) -> None:
    legacy = {"llm": {"model": json.dumps(json.dumps("claude")), "timeout_s": '"60"', "temperature": 0.2}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(legacy))
    dry = json.loads(run_cli(db, "config", "migrate", str(path), "--dry-run", "--json").stdout)
    assert dry["migrated"] == {"llm.model": "claude", "llm.timeout_s": 60}
    assert dry["skipped_unknown"] == ["llm.temperature"]
    assert json.loads(run_cli(db, "config", "get", "llm.model", "--json").stdout)["source"] == "default"
    real = json.loads(run_cli(db, "config", "migrate", str(path), "--json").stdout)
    assert real["dry_run"] is False and set(real["migrated"]) == {"llm.model", "llm.timeout_s"}
    assert json.loads(run_cli(db, "config", "get", "llm.model", "--json").stdout)["value"] == "claude"
    again = json.loads(run_cli(db, "config", "migrate", str(path), "--json").stdout)
    assert again["migrated"] == {} and sorted(again["unchanged"]) == ["llm.model", "llm.timeout_s"]


def test_migrate_malformed_file(db: str, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"llm": {"model": "x",}')
    proc = run_cli(db, "config", "migrate", str(path), ok=False)
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr and "Traceback" not in proc.stderr


async def test_cli_write_reaches_a_running_instance(db: str) -> None:
    async with await accord.connect(db, "", groups=[Llm], poll_interval=0.02) as cfg:
        run_cli(db, "config", "set", "llm.model", "o3")
        await _eventually(lambda: cfg.llm.model == "o3")


async def _eventually(predicate: object, deadline_s: float = 10.0) -> None:
    import asyncio

    assert callable(predicate)
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not predicate():
        assert loop.time() < end, "condition not reached before the deadline"
        await asyncio.sleep(0.02)
