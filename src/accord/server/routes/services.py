"""GET /api/services: the registry's services, each instance with its node and checks, for the UI.

The same catalog and the same ACL as the Consul-compatible /v1/health/service routes (an instance or a
check is listed only if the token may read its key), but authenticated like every /api route, so the
UI's session cookie and CSRF header work here (the /v1 routes take Consul's token headers only).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from accord.registry.catalog import Catalog, health_check_json
from accord.server import schemas as s
from accord.server.deps import Caller

router = APIRouter(prefix="/api/services", tags=["registry"], responses=s.ERROR_RESPONSES)


@router.get("", summary="Every service with its instances and their checks (status and output)")
async def list_services(request: Request, caller: Caller) -> list[dict[str, Any]]:
    catalog: Catalog = request.app.state.consul.catalog
    readable = caller.policy.can_read
    checks = [health_check_json(item, item.value) for item in catalog.checks() if readable(item.key)]
    services: dict[str, list[dict[str, Any]]] = {}
    for item in catalog.services():
        if not readable(item.key):
            continue
        value = item.value
        node = str(value.get("Node", ""))
        mine = [c for c in checks if c["Node"] == node and c["ServiceID"] in ("", value.get("ID"))]
        mine.append(health_check_json(None, catalog.serf_check(node)))
        services.setdefault(str(value.get("Service", "")), []).append(
            {
                "id": value.get("ID", ""),
                "node": node,
                "address": value.get("Address", ""),
                "port": value.get("Port", 0),
                "tags": list(value.get("Tags") or []),
                "status": _worst(c["Status"] for c in mine),
                "checks": [
                    {"id": c["CheckID"], "name": c["Name"], "status": c["Status"], "output": c["Output"]}
                    for c in sorted(mine, key=lambda c: str(c["CheckID"]))
                ],
            }
        )
    return [
        {"name": name, "instances": sorted(rows, key=lambda row: (str(row["node"]), str(row["id"])))}
        for name, rows in sorted(services.items())
    ]


def _worst(statuses: Any) -> str:
    order = {"passing": 0, "warning": 1, "critical": 2}
    return max(statuses, key=lambda status: order.get(status, 2), default="passing")
