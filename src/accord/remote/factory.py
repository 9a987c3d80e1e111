"""The store and propagation of a remote client: what ``accord.connect(addr=..., token=...)`` gives its replica."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from accord.bus.auth import BusAuth
from accord.bus.factory import Propagation
from accord.bus.value_cache import NullValueCache
from accord.remote.instances import HttpInstanceStore
from accord.remote.servers import Servers, parse_addresses
from accord.remote.store import HttpKVStore
from accord.remote.stream import RemoteStreamBus


@dataclass(frozen=True)
class RemoteParts:
    store: HttpKVStore
    propagation: Propagation
    bus: RemoteStreamBus
    instances: HttpInstanceStore  # the fleet view's row, reported to a server (docs/fleet.md)


def remote_parts(addr: str | Sequence[str], token: str, prefixes: Sequence[str]) -> RemoteParts:
    """One ``Servers`` shared by the store's calls and the stream, so both fail over together."""
    servers = Servers(parse_addresses(addr), token)
    store = HttpKVStore(servers)
    bus = RemoteStreamBus(servers, prefixes)
    # BusAuth only signs Redis/NOTIFY messages; a remote client has none, so its deployment is never read.
    propagation = Propagation(bus=bus, cache=NullValueCache(), auth=BusAuth(store))
    return RemoteParts(store, propagation, bus, HttpInstanceStore(servers))
