"""/api/instances: the fleet view (docs/fleet.md). A token needs read on the ACL key ``fleet/``."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import JsonValue

from accord.registry.fleet import FLEET_ACL_KEY
from accord.server import schemas as s
from accord.server.deps import Caller, State, require_read

router = APIRouter(prefix="/api/instances", tags=["fleet"], responses=s.ERROR_RESPONSES)


@router.get("", summary="Every announced instance with the revision it applied, its lag and whether it is stale")
async def list_instances(state: State, caller: Caller) -> list[dict[str, JsonValue]]:
    require_read(caller, FLEET_ACL_KEY)
    rows: list[dict[str, JsonValue]] = await state.admin.instances()
    return rows
