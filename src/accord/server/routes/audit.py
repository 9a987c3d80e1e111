"""/api/audit: every write with actor, time, request id and masked old/new values (history is the trail)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from accord.core.errors import ValidationFailedError
from accord.server import schemas as s
from accord.server.deps import Caller, State
from accord.store.audit import AuditFilter

router = APIRouter(prefix="/api/audit", tags=["audit"], responses=s.ERROR_RESPONSES)
_NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL


@router.get("", summary="Audit records, newest first (only keys the token may read)")
async def audit(
    state: State,
    caller: Caller,
    prefix: Annotated[
        str, Query(max_length=512, pattern=r"^[A-Za-z0-9_.\-/]*$", description="Store key prefix, e.g. config/llm/")
    ] = "",
    actor: Annotated[str | None, Query(max_length=200, pattern=_NO_NUL)] = None,
    action: Annotated[str | None, Query(max_length=32, pattern=_NO_NUL)] = None,
    since: datetime | None = None,
    before_revision: Annotated[int | None, Query(ge=1, le=s.MAX_INT64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[s.AuditRow]:
    flt = AuditFilter(prefix, actor, action, _utc(since), before_revision, limit)
    return [s.AuditRow(**row) for row in await state.admin.audit(flt, readable=caller.policy.can_read)]


def _utc(moment: datetime | None) -> datetime | None:
    """History times are UTC; a time without an offset is taken as UTC too."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValidationFailedError(f"since={moment.isoformat()} is outside the years 1-9999 once in UTC") from None
