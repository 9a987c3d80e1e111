"""The CLI loads only what a command uses: ``--version`` and HTTP-only commands never open the database stack."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import accord
from accord import __version__

HEAVY = ("sqlalchemy", "alembic", "redis", "fastapi", "uvicorn", "asyncpg", "aiosqlite")
# Runs the real entry point in a fresh interpreter, then reports which top-level packages got imported.
PROBE = """
import json, sys
from accord.cli.app import main
sys.argv = ["accord", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
loaded = {name.split(".")[0] for name, module in sys.modules.items() if module is not None}  # None: blocked
print(json.dumps({"code": code, "loaded": sorted(loaded)}), file=sys.stderr)
"""


def run_probe(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[str], str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env=base | (env or {}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], report["loaded"], done.stdout


def test_version_loads_no_database_redis_or_web_stack() -> None:
    code, loaded, stdout = run_probe("--version")
    assert (code, stdout.strip()) == (0, f"accord {__version__}")
    assert [name for name in HEAVY if name in loaded] == []
    assert "typer" in loaded  # the probe sees what the command imported


def test_an_http_command_loads_httpx_but_no_database_stack() -> None:
    # Nothing listens on port 9 of localhost: the command fails as "unreachable" (exit 5) after importing all it needs.
    code, loaded, _ = run_probe("config", "get", "llm.model", env={"ACCORD_ADDR": "http://127.0.0.1:9"})
    assert code == 5
    assert "httpx" in loaded
    assert [name for name in HEAVY if name in loaded] == []


def test_a_database_command_does_load_the_database_stack(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    asyncio.run(_create(url))  # a read-only command never creates the database
    code, loaded, _ = run_probe("config", "list", env={"ACCORD_DB_URL": url})
    assert code == 0
    assert "sqlalchemy" in loaded and "httpx" not in loaded


async def _create(url: str) -> None:
    async with await accord.connect(url, "", watch=False):
        pass
