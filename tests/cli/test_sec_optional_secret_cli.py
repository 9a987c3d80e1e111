"""A ``str | None`` secret through every CLI command that shows a value, run as a subprocess.

The CLI reads by the stored schema; a union used to fail to decode, so the CLI logged the
plaintext, read the setting as its default, and `config export` broke off.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import accord
from accord import Setting, SettingsGroup
from tests.cli.cli_helpers import run_cli


class Svc(SettingsGroup, category="svc"):
    api_key: str | None = Setting(None, secret=True)
    label: str | None = Setting(None)


async def test_every_command_masks_an_optional_secret(sqlite_url: str, tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    plain = f"sk-live-{marker}-tail"
    async with await accord.connect(sqlite_url, "", groups=[Svc], watch=False) as cfg:
        await cfg.set("svc.api_key", plain)
        await cfg.set("svc.api_key", plain + "2")
        await cfg.set("svc.label", "a label")
    guess = tmp_path / "guess.json"
    guess.write_text(json.dumps({"svc.api_key": plain}))
    commands = [
        ("config", "list"),
        ("config", "list", "--json"),
        ("config", "get", "svc.api_key"),
        ("config", "get", "svc.api_key", "--json"),
        ("config", "history", "svc.api_key"),
        ("config", "history", "svc.api_key", "--json"),
        ("config", "diff", "--from-revision", "0"),
        ("config", "diff", "--from-revision", "0", "--json"),
        ("config", "export"),
        ("config", "import", str(guess), "--dry-run"),
        ("config", "rollback", "svc.api_key", "--to-version", "1"),
        ("config", "set", "svc.api_key", plain + "3"),
        ("config", "unset", "svc.api_key", "--json"),
    ]
    for args in commands:
        done = run_cli(*args, db=sqlite_url)
        assert marker not in done.stdout + done.stderr, (args, done.stdout, done.stderr)
    shown = json.loads(run_cli("config", "get", "svc.label", "--json", db=sqlite_url).stdout)
    assert shown["value"] == "a label" and shown["source"] == "stored"
    run_cli("config", "set", "svc.api_key", plain, db=sqlite_url)
    row = json.loads(run_cli("config", "get", "svc.api_key", "--json", db=sqlite_url).stdout)
    assert row["source"] == "stored" and row["value"] == "sk-l****tail", row
    exported = json.loads(run_cli("config", "export", db=sqlite_url).stdout)
    assert exported["settings"] == {"svc.api_key": "sk-l****tail", "svc.label": "a label"}
