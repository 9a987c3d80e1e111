"""Schema upgrades applied on start, safe when many processes start at once."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

from accord.store.dialect import lock_out_other_writers
from accord.store.engine import write_tx

SCRIPT_LOCATION = "accord.store:migrations"
_MIGRATION_LOCK = 0x6163636F7264  # "accord": one advisory lock id for every accord database


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema to head inside one write transaction.

    The transaction holds the database's write lock while Alembic reads its version table, so two
    processes starting together cannot both try to create the tables.
    """
    async with write_tx(engine) as conn:
        await lock_out_other_writers(conn, _MIGRATION_LOCK)
        await conn.run_sync(_upgrade_sync)


def _upgrade_sync(connection: sa.Connection) -> None:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
