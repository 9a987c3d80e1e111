"""The embedded database (with its -wal and -shm) and the master key file are created 0600."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.cli.cli_helpers import cli_env

# Runs in a child under umask 022: connects, stores a secret (so the key file is made), and while the
# database is open records the modes of every file beside it, -wal and -shm included.
SCRIPT = """
import asyncio, os, stat, sys
import accord
from tests.cli.cli_helpers import Llm

async def main(url, folder):
    async with await accord.connect(url, "", groups=[Llm], watch=True) as cfg:
        await cfg.set("llm.api_key", "sk-live-0123456789abcdef")
        for name in sorted(os.listdir(folder)):
            print(name, oct(stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode)))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_database_and_key_files_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    url = f"sqlite+aiosqlite:///{folder / 'accord.db'}"
    env = {k: v for k, v in cli_env().items() if k != "ACCORD_MASTER_KEY"}  # the key file is made beside the db
    old = os.umask(0o022)
    try:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, url, str(folder)], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    modes = dict(line.split() for line in done.stdout.splitlines())
    assert {"accord.db", "accord.db-wal", "accord.db-shm", "accord.key"} <= set(modes), modes
    assert all(mode == "0o600" for mode in modes.values()), modes
    assert stat.S_IMODE((folder / "accord.db").stat().st_mode) == 0o600
