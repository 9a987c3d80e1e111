"""What the Consul API needs of a server process, built once in its lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from accord.registry.blocking import ChangeSignal
from accord.registry.catalog import Catalog
from accord.replica.replica import Replica

REGISTRY_PREFIXES = ("kv/", "registry/")  # the server's replica holds these beside config/ and acl/


@dataclass
class ConsulState:
    replica: Replica
    signal: ChangeSignal = field(init=False)
    catalog: Catalog = field(init=False)

    def __post_init__(self) -> None:
        self.signal = ChangeSignal(self.replica, REGISTRY_PREFIXES)
        self.catalog = Catalog(self.replica)

    async def start(self) -> None:
        """Start background work (leases, checks); each part adds its own here."""

    async def aclose(self) -> None:
        self.catalog.close()
        self.signal.close()
