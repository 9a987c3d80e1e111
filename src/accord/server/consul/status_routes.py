"""``/v1/status/leader`` and ``/v1/status/peers``: answered without a token, as Consul does."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from accord.core.errors import StoreUnavailableError
from accord.registry.leader import LEADER_TIMER, PEER_PREFIX, leader_address, recorded_leader
from accord.server.consul.state import ConsulState
from accord.server.consul.wire import check_dc, json_response

__all__ = ["routes"]


async def _leader(request: Request) -> Response:
    """The live leader's address ("" when no replica holds the lease), read from the lease entry."""
    check_dc(request)
    state = _state(request)
    try:
        holder = await state.timers.holder(LEADER_TIMER)
    except StoreUnavailableError:
        return json_response(recorded_leader(state.replica))  # the database is down: the last one recorded
    return json_response(leader_address(state.replica, holder))


async def _peers(request: Request) -> Response:
    """The addresses of the replicas whose heartbeat timer is alive, the leader's among them."""
    check_dc(request)
    state = _state(request)
    names = await state.timers.alive(PEER_PREFIX)
    return json_response(sorted({name[len(PEER_PREFIX) :] for name in names}))


def _state(request: Request) -> ConsulState:
    state: ConsulState = request.app.state.consul  # not router.consul_state: the router imports this module
    return state


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/status/leader", _leader, methods=["GET"]),
        Route("/v1/status/peers", _peers, methods=["GET"]),
    ]
