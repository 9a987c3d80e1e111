"""What the Consul API needs of a server process, built once in its lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from accord.registry.blocking import ChangeSignal
from accord.registry.kv import KvService
from accord.registry.sessions import SessionService
from accord.replica.replica import Replica

REGISTRY_PREFIXES = ("kv/", "registry/")  # the server's replica holds these beside config/ and acl/


@dataclass
class ConsulState:
    replica: Replica
    signal: ChangeSignal = field(init=False)
    kv: KvService = field(init=False)
    sessions: SessionService = field(init=False)

    def __post_init__(self) -> None:
        self.signal = ChangeSignal(self.replica, REGISTRY_PREFIXES)
        self.kv = KvService(self.replica)
        self.sessions = SessionService(self.replica, self.kv)

    async def start(self) -> None:
        """Start background work (leases, checks); each part adds its own here."""
        await self.kv.start()
        await self.sessions.start()

    async def aclose(self) -> None:
        await self.sessions.aclose()
        self.kv.close()
        self.signal.close()
