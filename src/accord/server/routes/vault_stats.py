"""GET /api/vault/stats: the vault's numbers (``accord vault stats``) for the UI. Needs read on ``vault/``.

Counting reads only the vault's tables in the server's own database (they are created by its
migrations): no master key, no Redis and no vault object are needed, and no original is ever read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from accord.core.errors import AccordError
from accord.server import schemas as s
from accord.server.deps import Caller, State, require_read
from accord.store.engine import read_tx
from accord.store.kv import SqlKVStore
from accord.vault._sql import statements as vault_sql  # the vault's own counting query (Vault.stats runs it)
from accord.vault.types import check_scope

router = APIRouter(prefix="/api/vault", tags=["vault"], responses=s.ERROR_RESPONSES)
VAULT_ACL_KEY = "vault/"


class VaultStatsOut(BaseModel):
    scope: str | None
    mappings: dict[str, int]
    total: int
    expired: int
    unmask_misses: int
    unmask_expired: int


@router.get("/stats", summary="Live mappings per token type, expired mappings, unmask misses")
async def vault_stats(
    state: State,
    caller: Caller,
    scope: Annotated[str | None, Query(max_length=128, description="Count one scope's mappings only.")] = None,
) -> VaultStatsOut:
    if scope is not None:
        require_read(caller, f"{VAULT_ACL_KEY}{check_scope(scope)}/")
    else:
        require_read(caller, VAULT_ACL_KEY)
    store = state.live.store
    if not isinstance(store, SqlKVStore):
        raise AccordError("this server's store keeps no vault tables")
    async with read_tx(store.engine) as conn:
        numbers = await vault_sql.stats(conn, scope)
    return VaultStatsOut(
        scope=scope,
        mappings=numbers.mappings,
        total=numbers.total,
        expired=numbers.expired,
        unmask_misses=numbers.unmask_misses,
        unmask_expired=numbers.unmask_expired,
    )
