"""/api/vault: mask and unmask through the server, so a masking proxy needs no database and no master key.

The server holds one shared vault (``ServerVault``), opened as the proxy and ``accord vault`` open it
(``SharedVault.from_url``: it follows the shared ``vault.*`` settings) on the first call that needs it.
Every call is batch-shaped: a request carries all the texts of one proxied request (docs/remote.md, Vault).

Rules are on ``vault/<scope>/``, as for the proxy's own token check: masking needs ``write`` there (it
creates mappings); unmasking needs ``reveal_secrets`` and read access (it hands out originals); the token
types need read access.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from accord.server.deps import Caller, require_read, require_reveal, require_write
from accord.server.schemas import ERROR_RESPONSES
from accord.vault import Vault
from accord.vault.batch import mask_many, unmask_many
from accord.vault.shared import SharedVault
from accord.vault.types import DEFAULT_SCOPE, check_scope

__all__ = ["OPEN_TIMEOUT_S", "ServerVault", "router", "server_vault"]

router = APIRouter(prefix="/api/vault", tags=["vault"], responses=ERROR_RESPONSES)
OPEN_TIMEOUT_S = 5.0  # a request waits no longer than this for the vault's database; the next call tries again
MAX_TEXTS = 10_000
Json = dict[str, Any]


class ServerVault:
    """The server's one vault, opened on first use (a server that never masks never opens it)."""

    def __init__(self, db_url: str | None, redis_url: str | None) -> None:
        self._db_url = db_url
        self._redis_url = redis_url
        self._shared: SharedVault | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Vault:
        if self._shared is None:
            async with self._lock:
                if self._shared is None:  # a failed open (database down) raises here; the next call retries
                    self._shared = await SharedVault.from_url(
                        self._db_url, self._redis_url, use_env=False, start_timeout=OPEN_TIMEOUT_S
                    )
        return self._shared.vault

    async def aclose(self) -> None:
        async with self._lock:
            if self._shared is not None:
                shared, self._shared = self._shared, None
                await shared.aclose()


def server_vault(request: Request) -> ServerVault:
    holder: ServerVault = request.app.state.vault
    return holder


class MaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: str = DEFAULT_SCOPE
    texts: list[str] = Field(max_length=MAX_TEXTS, description="Masked together, in one atomic get-or-create.")
    max_new: int | None = Field(
        default=None, ge=1, description="Refuse (413) a batch with more distinct values than this to mask."
    )


class UnmaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: str = DEFAULT_SCOPE
    texts: list[str] = Field(max_length=MAX_TEXTS)
    only: list[str] | None = Field(default=None, description="Unmask only these tokens (a request's own).")


def _key(scope: str) -> str:
    return f"vault/{check_scope(scope)}/"


@router.post("/mask", summary="Mask many texts in one call; needs write on vault/<scope>/")
async def mask(caller: Caller, request: Request, body: MaskIn) -> Json:
    require_write(caller, _key(body.scope))  # before the vault opens: a refused call costs no database work
    if not body.texts:  # a proxy's token check: allowed, nothing to mask
        return {"texts": [], "mappings": {}, "types": []}
    vault = await server_vault(request).get()
    texts, mappings = await mask_many(vault, body.texts, body.scope, max_new=body.max_new)
    return {"texts": texts, "mappings": mappings, "types": sorted(vault.grammar.types)}


@router.post("/unmask", summary="Put originals back in many texts; needs reveal_secrets and read on vault/<scope>/")
async def unmask(caller: Caller, request: Request, body: UnmaskIn) -> Json:
    require_reveal(caller, _key(body.scope))
    if not body.texts:
        return {"texts": []}
    vault = await server_vault(request).get()
    return {"texts": await unmask_many(vault, body.texts, body.scope, only=body.only)}


@router.get("/types", summary="The token types this vault knows (what a proxy's unmasker looks for)")
async def types(caller: Caller, request: Request, scope: Annotated[str, Query()] = DEFAULT_SCOPE) -> Json:
    key = _key(scope)
    require_read(caller, key)
    vault = await server_vault(request).get()
    return {"types": sorted(vault.grammar.types)}
