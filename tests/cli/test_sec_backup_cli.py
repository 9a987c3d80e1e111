"""`accord config export --sealed` is a backup that restores secrets; a masked secret is never stored as text."""

from __future__ import annotations

import json
from pathlib import Path

import accord
from tests.cli.cli_helpers import SECRET, Llm, run_cli


async def _declare(db_url: str) -> None:
    async with await accord.connect(db_url, "", groups=[Llm], watch=False):
        pass


async def test_a_sealed_export_restores_into_a_fresh_store(llm_db: str, tmp_path: Path) -> None:
    backup = tmp_path / "backup.json"
    run_cli("config", "export", str(backup), "--sealed", db=llm_db)
    document = json.loads(backup.read_text())
    assert document["sealed"] is True
    sealed = document["settings"]["llm.api_key"]
    assert set(sealed) == {"$sealed"} and SECRET not in backup.read_text() and "****" not in backup.read_text()
    fresh = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    await _declare(fresh)
    run_cli("config", "import", str(backup), db=fresh)
    for path in ("llm.api_key", "llm.timeout_s"):
        restored = json.loads(run_cli("config", "get", path, "--reveal", "--json", db=fresh).stdout)
        original = json.loads(run_cli("config", "get", path, "--reveal", "--json", db=llm_db).stdout)
        assert restored["value"] == original["value"] and restored["source"] == "stored", (restored, original)
    assert json.loads(run_cli("config", "get", "llm.api_key", "--reveal", "--json", db=fresh).stdout)["value"] == SECRET


async def test_a_masked_secret_that_does_not_match_is_refused(llm_db: str, tmp_path: Path) -> None:
    masked = tmp_path / "masked.json"
    run_cli("config", "export", str(masked), db=llm_db)
    fresh = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    await _declare(fresh)
    refused = run_cli("config", "import", str(masked), db=fresh, code=2)
    assert "llm.api_key" in refused.stderr and "masked" in refused.stderr, refused.stderr
    row = json.loads(run_cli("config", "get", "llm.api_key", "--reveal", "--json", db=fresh).stdout)
    assert row["source"] == "default" and row["version"] == 0, row
    run_cli("config", "import", str(masked), db=llm_db)  # the mask of the stored secret: kept, not overwritten
    kept = json.loads(run_cli("config", "get", "llm.api_key", "--reveal", "--json", db=llm_db).stdout)
    assert kept["value"] == SECRET and kept["version"] == 1, kept
