"""A remote client's row in the fleet view (docs/fleet.md), written by a server on the client's report.

The client reports the revision its own replica has applied (``PUT /api/instances/{id}``); the server
writes the row with its own clock as the heartbeat and never substitutes its replica's revision. The
token needs ``write`` on ``fleet/``; a refusal is logged once and the client then stops reporting.
"""

from __future__ import annotations

import logging
from datetime import datetime

from accord.core.errors import AuthenticationError, PermissionDeniedError
from accord.remote.servers import Servers
from accord.store.instances import InstanceRow

__all__ = ["HttpInstanceStore"]

log = logging.getLogger("accord.fleet")


class HttpInstanceStore:
    """The ``InstanceStore`` the fleet Announcer uses in a remote client."""

    def __init__(self, servers: Servers) -> None:
        self._servers = servers
        self.refused: str | None = None  # why the server refused this token's reports, once it did

    async def upsert(self, row: InstanceRow) -> None:
        if self.refused is not None:
            return
        body = {
            "service": row.service,
            "host": row.host,
            "pid": row.pid,
            "version": row.version,
            "applied_revision": row.applied_revision,
            "started_at": row.started_at.isoformat(),
        }
        try:
            await self._servers.call("PUT", f"/api/instances/{row.id}", body=body)
        except (PermissionDeniedError, AuthenticationError) as exc:
            self.refused = exc.detail
            log.warning(
                "this client does not appear in the fleet view: the server refused its report (%s); grant its "
                "token fleet/=write to have it listed",
                exc.detail,
            )

    async def remove(self, instance_id: str) -> None:
        if self.refused is None:
            await self._servers.call("DELETE", f"/api/instances/{instance_id}")

    async def list(self) -> list[InstanceRow]:
        rows = await self._servers.call("GET", "/api/instances")
        return [
            InstanceRow(
                str(r["id"]),
                str(r["service"]),
                str(r["host"]),
                int(r["pid"]),
                str(r["version"]),
                int(r["applied_revision"]),
                datetime.fromisoformat(r["started_at"]),
                datetime.fromisoformat(r["heartbeat_at"]),
            )
            for r in rows
        ]

    async def expire(self, before: datetime) -> int:
        """Nothing: expiring old rows is the servers' part (their own announcers do it)."""
        return 0
