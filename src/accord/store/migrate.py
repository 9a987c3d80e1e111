"""Schema upgrades applied on start, safe when many processes start at once.

Alembic (~0.3 s to import) is loaded only when the database is not at the head revision already:
a start on an up-to-date database (every CLI call) reads the version table and goes on.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from accord.store.dialect import lock_out_other_writers
from accord.store.engine import read_tx, write_tx

SCRIPT_LOCATION = "accord.store:migrations"
VERSION_TABLE = "accord_alembic_version"  # the name migrations/env.py gives Alembic
_MIGRATION_LOCK = 0x6163636F7264  # "accord": one advisory lock id for every accord database


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema to head inside one write transaction.

    The transaction holds the database's write lock while Alembic reads its version table, so two
    processes starting together cannot both try to create the tables.
    """
    if await _at_head(engine):
        return
    async with write_tx(engine) as conn:
        await conn.run_sync(lock_out_other_writers, _MIGRATION_LOCK)
        await conn.run_sync(_upgrade_sync)


@functools.cache
def head_revision() -> str:
    """The revision no other migration names as its ``down_revision``, read off the version files' text."""
    found: dict[str, str | None] = {}
    for item in resources.files("accord.store.migrations.versions").iterdir():
        if item.name.endswith(".py") and not item.name.startswith("_"):
            text = item.read_text()
            revision = re.search(r'^revision\b.*?=\s*"([^"]+)"', text, re.MULTILINE)
            down = re.search(r'^down_revision\b.*?=\s*"([^"]+)"', text, re.MULTILINE)
            if revision:
                found[revision.group(1)] = down.group(1) if down else None
    heads = set(found) - {down for down in found.values() if down}
    return heads.pop() if len(heads) == 1 else ""  # "": no single head, let Alembic decide


async def _at_head(engine: AsyncEngine) -> bool:
    head = head_revision()
    if not head:
        return False
    async with read_tx(engine) as conn:
        return await conn.run_sync(_version_is, head)


def _version_is(connection: sa.Connection, head: str) -> bool:
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return False  # a new database
    versions = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return list(versions) == [head]


def _upgrade_sync(connection: sa.Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
