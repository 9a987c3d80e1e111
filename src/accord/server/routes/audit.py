"""/api/audit: every write with actor, time, request id and masked old/new values (history is the trail)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from accord.server import schemas as s
from accord.server.deps import Caller, State
from accord.store.audit import AuditFilter

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("", summary="Audit records, newest first (only keys the token may read)")
async def audit(
    state: State,
    caller: Caller,
    prefix: Annotated[str, Query(max_length=512, description="Store key prefix, e.g. config/llm/")] = "",
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=32)] = None,
    since: datetime | None = None,
    before_revision: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[s.AuditRow]:
    flt = AuditFilter(prefix, actor, action, since, before_revision, limit)
    return [s.AuditRow(**row) for row in await state.admin.audit(flt, readable=caller.policy.can_read)]
