"""Reading this database's deployment row (created once by migration 0005; see accord.bus.auth for its use)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from accord.core.errors import AccordError
from accord.core.redis_keys import RedisKeys
from accord.store import tables as t
from accord.store.engine import read_tx, redact
from accord.store.types import Deployment


async def read_deployment(engine: AsyncEngine) -> Deployment:
    async with read_tx(engine) as conn:
        row = (await conn.execute(sa.select(t.deployment.c.id, t.deployment.c.bus_key))).first()
    if row is None:
        raise AccordError(f"database {redact(engine.url)} has no deployment row; run its migrations")
    return Deployment(str(row.id), bytes(row.bus_key))


async def redis_keys_of(engine: AsyncEngine) -> RedisKeys:
    """The Redis namespace of the deployment whose database ``engine`` opens."""
    return RedisKeys((await read_deployment(engine)).id)
