"""A direct-mode CLI call loads only the backends it uses: on an up-to-date SQLite database no redis-py,
asyncpg or Alembic (bench/cli_startup.py measures what that saves); with Redis or a migration due, they load."""

from __future__ import annotations

import asyncio
from pathlib import Path

import accord
from accord import Setting, SettingsGroup
from tests.cli.test_cli_startup import run_probe

UNUSED_ON_SQLITE = ("redis", "asyncpg", "alembic")


class Lazy(SettingsGroup, category="lazy"):
    model: str = Setting("gpt-4o")


async def _declare(url: str) -> None:
    async with await accord.connect(url, "", groups=[Lazy], watch=False, use_env=False) as cfg:
        await cfg.set("lazy.model", "bge-m3")


def test_config_get_on_sqlite_loads_no_redis_asyncpg_or_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    asyncio.run(_declare(url))
    code, loaded, stdout = run_probe("config", "get", "lazy.model", env={"ACCORD_DB_URL": url})
    assert code == 0 and "bge-m3" in stdout
    assert "sqlalchemy" in loaded and "aiosqlite" in loaded  # the probe sees the backend it did use
    assert [name for name in UNUSED_ON_SQLITE if name in loaded] == []


def test_a_new_database_still_runs_its_migrations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new.db"
    code, loaded, _ = run_probe("config", "set", "lazy.other", "1", env={"ACCORD_DB_URL": url})
    assert "alembic" in loaded, f"exit {code}: the schema was created without Alembic?"
    assert (tmp_path / "new.db").exists()


def test_a_redis_url_loads_redis(tmp_path: Path, redis_url: str) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    asyncio.run(_declare(url))
    env = {"ACCORD_DB_URL": url, "ACCORD_REDIS_URL": redis_url}
    code, loaded, stdout = run_probe("config", "get", "lazy.model", env=env)
    assert code == 0 and "bge-m3" in stdout
    assert "redis" in loaded and "alembic" not in loaded


def test_the_head_read_off_the_files_is_alembics_head() -> None:
    """The fast path compares the database with ``head_revision()``: it must be the head Alembic would reach."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from accord.store.migrate import SCRIPT_LOCATION, head_revision

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()
