"""Import, export and migrate of many keys: all or nothing, masked secrets kept, progress bars off stdout."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import threading
from pathlib import Path

import pytest

import accord
from tests.cli.cli_helpers import (
    ACCORD,
    SECRET,
    AccordServer,
    Llm,
    ServerFactory,
    both,
    bulk_group,
    cli_env,
    one_line_error,
    run_cli,
)

BULK = bulk_group(120)


@pytest.fixture
async def server(llm_db: str, start_server: ServerFactory) -> AccordServer:
    """A server on a store where the llm settings and 120 bulk settings were registered before it started."""
    async with await accord.connect(llm_db, "", groups=[Llm, BULK], watch=False):
        pass
    return start_server(llm_db)


async def test_import_all_or_nothing_and_export_round_trip(server: AccordServer, tmp_path: Path) -> None:
    over = {"addr": server.addr, "token": server.token}
    exported = tmp_path / "export.json"
    run_cli("config", "export", str(exported), **over)
    assert json.loads(exported.read_text())["settings"]["llm.api_key"] == "sk-l****cdef"
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"llm.model": "claude", "llm.timeout_s": 60, "llm.api_key": "sk-l****cdef"}))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"llm.model": "mistral", "llm.timeout_s": 0}))
    before = run_cli("config", "export", **over).stdout
    dry = json.loads(run_cli("config", "import", str(good), "--dry-run", "--json", **over).stdout)
    assert sorted(row["path"] for row in dry["changes"]) == ["llm.model", "llm.timeout_s"] and dry["dry_run"]
    failed = run_cli("config", "import", str(bad), **over, code=2)
    assert "nothing was imported" in one_line_error(failed) and "llm.timeout_s" in failed.stderr
    assert run_cli("config", "export", **over).stdout == before
    table = run_cli("config", "import", str(good), **over).stdout
    assert "imported 2 setting(s), 1 unchanged" in table and "claude" in table
    run_cli("config", "import", str(exported), **over)  # the masked secret in an export keeps the stored one
    async with await accord.connect(server.db_url, "", watch=False) as cfg:
        assert cfg.get("llm.api_key") == SECRET
        assert (cfg.get("llm.model"), cfg.get("llm.timeout_s")) == ("claude", 45)  # the export held no llm.model


async def test_progress_bar_stays_off_stdout(server: AccordServer, tmp_path: Path) -> None:
    values = tmp_path / "bulk.json"
    values.write_text(json.dumps({f"bulk.k{i:03d}": 1000 + i for i in range(120)}))
    forced = run_cli("config", "import", str(values), "--json", "--progress", addr=server.addr, token=server.token)
    assert len(json.loads(forced.stdout)["changes"]) == 120
    assert "importing" in forced.stderr and "120/120 keys" in forced.stderr
    quiet = run_cli("config", "export", "--no-progress", db=server.db_url)
    assert quiet.stderr.startswith("database: ") and quiet.stderr.count("\n") == 1  # no bar: only the database named
    assert json.loads(quiet.stdout)["settings"]["bulk.k007"] == 1007
    # stderr a terminal, stdout a pipe: the bar is drawn on the terminal and stdout is still pure JSON
    values.write_text(json.dumps({f"bulk.k{i:03d}": 2000 + i for i in range(120)}))
    stdout, terminal = _with_terminal_stderr(["config", "import", str(values), "--json"], server.db_url)
    assert json.loads(stdout)["unchanged"] == 0
    assert "120/120 keys" in terminal


def _with_terminal_stderr(args: list[str], db_url: str) -> tuple[str, str]:
    leader, follower = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(
            [ACCORD, *args], stdout=subprocess.PIPE, stderr=follower, env=cli_env(db=db_url), timeout=90, check=False
        )
    finally:
        os.close(follower)
        reader.join(10)
        os.close(leader)
    assert proc.returncode == 0, b"".join(chunks)
    return proc.stdout.decode(), b"".join(chunks).decode(errors="replace")


async def test_migrate_many_keys_over_http(server: AccordServer, tmp_path: Path) -> None:
    legacy = {"bulk": {f"k{i:03d}": json.dumps(json.dumps(str(500 + i))) for i in range(60)}, "gone": {"x": 1}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(legacy))
    args = ("config", "migrate", str(path), "--dry-run", "--json", "--progress")
    direct, http = both(server.db_url, server.addr, server.token, *args)
    assert (
        direct.stdout == http.stdout and "migrating" in http.stderr and "61/61 keys" in http.stderr
    )  # 60 known + 1 unknown
    dry = json.loads(http.stdout)
    assert len(dry["migrated"]) == 60 and dry["migrated"]["bulk.k001"] == 501 and dry["skipped_unknown"] == ["gone.x"]
    real = json.loads(run_cli(*args[:3], "--json", addr=server.addr, token=server.token).stdout)
    assert real["dry_run"] is False and len(real["migrated"]) == 60
    async with await accord.connect(server.db_url, "", watch=False) as cfg:
        assert cfg.get("bulk.k059") == 559
    audit = json.loads(run_cli("audit", "--action", "migrate", "--limit", "1000", "--json", db=server.db_url).stdout)
    assert len(audit) == 60 and {row["actor"] for row in audit} == {"management"}
