"""A lost or wrong master key is loud: no new key file, a failing CLI, a /readyz that is not ready."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import httpx

import accord
from tests.cli.cli_helpers import SECRET, Llm, ServerFactory, cli_env, finish, launch, run_cli


def _keyless_env(db: str) -> dict[str, str]:
    return {k: v for k, v in cli_env(db=db).items() if k != "ACCORD_MASTER_KEY"}


def _run(args: tuple[str, ...], env: dict[str, str], code: int | None = 0) -> tuple[int, str, str]:
    done = finish(launch(args, env), code)
    return done.returncode, done.stdout, done.stderr


async def _declare(db_url: str) -> None:
    async with await accord.connect(db_url, "", groups=[Llm], watch=False):
        pass


async def test_a_restart_with_the_key_file_moved_away_fails_loudly(tmp_path: Path) -> None:
    db = tmp_path / "accord.db"
    url = f"sqlite+aiosqlite:///{db}"
    await _declare(url)
    env = _keyless_env(url)
    _run(("config", "set", "llm.api_key", SECRET), env)
    key_file = db.with_suffix(".key")
    assert key_file.exists()
    key_file.rename(tmp_path / "moved-away.key")
    for args in (("config", "get", "llm.api_key", "--json"), ("config", "list", "--json"), ("config", "export")):
        code, out, err = _run(args, env, code=None)
        assert code != 0, (args, out, err)
        assert str(key_file) in err and '"value": ""' not in out, (args, out, err)
    assert not key_file.exists(), "a new key file was created over sealed data"


def test_a_wrong_key_makes_the_cli_fail_and_readyz_name_the_secret(llm_db: str, start_server: ServerFactory) -> None:
    wrong = {"ACCORD_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    failed = run_cli("config", "get", "llm.api_key", "--json", db=llm_db, extra=wrong, code=None)
    assert failed.returncode != 0 and '"source": "default"' not in failed.stdout, failed
    assert "llm.api_key" in failed.stderr, failed.stderr
    server = start_server(llm_db, env=wrong)
    ready = httpx.get(f"{server.addr}/readyz", timeout=10)
    assert ready.status_code == 503, ready.text
    assert "llm.api_key" in ready.json()["dependencies"]["secrets"]["error"]


def test_postgres_without_a_master_key_fails_at_start_naming_the_variable(pg_url: str) -> None:
    script_env = {k: v for k, v in cli_env().items() if k != "ACCORD_MASTER_KEY"}
    code = (
        "import asyncio, accord\n"
        "from tests.cli.cli_helpers import Llm\n"
        f"asyncio.run(accord.connect({pg_url!r}, '', groups=[Llm], watch=False))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=script_env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "MasterKeyError" in done.stderr and "ACCORD_MASTER_KEY" in done.stderr, done.stderr
