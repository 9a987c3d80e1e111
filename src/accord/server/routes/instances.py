"""/api/instances: the fleet view (docs/fleet.md). Reading needs read on the ACL key ``fleet/``; a remote
client's report of its own row (``PUT``/``DELETE /api/instances/{id}``) needs write there."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from accord.core.errors import InvalidInputError
from accord.registry.fleet import FLEET_ACL_KEY
from accord.server import schemas as s
from accord.server.deps import Caller, State, require_read, require_write
from accord.store.instances import InstanceRow, instance_store

router = APIRouter(prefix="/api/instances", tags=["fleet"], responses=s.ERROR_RESPONSES)
InstanceId = Annotated[str, PathParam(min_length=36, max_length=36, description="The instance's uuid4.")]


class ReportIn(BaseModel):
    """What a remote client says of itself; the applied revision is its own replica's, never this server's."""

    model_config = ConfigDict(extra="forbid")
    service: str = Field(min_length=1, max_length=200)
    host: str = Field(min_length=1, max_length=255)
    pid: int = Field(ge=0, le=2**31 - 1)
    version: str = Field(min_length=1, max_length=64)
    applied_revision: int = Field(ge=0, le=s.MAX_INT64)
    started_at: datetime


@router.get("", summary="Every announced instance with the revision it applied, its lag and whether it is stale")
async def list_instances(state: State, caller: Caller) -> list[dict[str, JsonValue]]:
    require_read(caller, FLEET_ACL_KEY)
    rows: list[dict[str, JsonValue]] = await state.admin.instances()
    return rows


@router.put("/{instance_id}", status_code=204, summary="A remote client's report: its row, heartbeat now")
async def report(state: State, caller: Caller, instance_id: InstanceId, body: ReportIn) -> Response:
    require_write(caller, FLEET_ACL_KEY)
    started = body.started_at if body.started_at.tzinfo is not None else body.started_at.replace(tzinfo=UTC)
    row = InstanceRow(
        _checked(instance_id),
        body.service,
        body.host,
        body.pid,
        body.version,
        body.applied_revision,
        started,
        datetime.now(UTC),  # this server's clock: a client's own would make its row look live or stale at will
    )
    await instance_store(state.live.store).upsert(row)
    return Response(status_code=204)


@router.delete("/{instance_id}", status_code=204, summary="A remote client leaving: its row is removed")
async def leave(state: State, caller: Caller, instance_id: InstanceId) -> Response:
    require_write(caller, FLEET_ACL_KEY)
    await instance_store(state.live.store).remove(_checked(instance_id))
    return Response(status_code=204)


def _checked(instance_id: str) -> str:
    try:
        return str(uuid.UUID(instance_id))
    except ValueError:
        raise InvalidInputError(f"instance id {instance_id!r} is not a uuid") from None
