"""What the Consul API needs of a server process, built once in its lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from accord.core import environ
from accord.registry.blocking import ChangeSignal
from accord.registry.catalog import Catalog
from accord.registry.kv import KvService
from accord.registry.leader import LeaderLease
from accord.registry.scheduler import CheckScheduler
from accord.registry.sessions import SessionService
from accord.replica.replica import Replica
from accord.store.types import Timers

REGISTRY_PREFIXES = ("kv/", "registry/")  # the server's replica holds these beside config/ and acl/
DEFAULT_ADDRESS = "127.0.0.1:8500"  # what a process names itself when nobody told it its address


@dataclass
class ConsulState:
    replica: Replica
    address: str = DEFAULT_ADDRESS  # this replica's advertised host:port (/v1/status/leader, peers)
    signal: ChangeSignal = field(init=False)
    timers: Timers = field(init=False)
    checks: CheckScheduler = field(init=False)
    leader: LeaderLease = field(init=False)
    _background: bool = field(init=False, default=False)
    kv: KvService = field(init=False)
    sessions: SessionService = field(init=False)
    catalog: Catalog = field(init=False)

    def __post_init__(self) -> None:
        self.signal = ChangeSignal(self.replica, REGISTRY_PREFIXES)
        self.timers = self.replica.store.timers()
        self.checks = CheckScheduler(self.replica, self.timers, reap_interval_s=environ.current().check_reap_interval)
        self.leader = LeaderLease(self.replica, self.timers, self.checks, address=self.address)
        self.kv = KvService(self.replica)
        self.sessions = SessionService(self.replica, self.kv)
        self.catalog = Catalog(self.replica)

    async def start(self, *, background: bool = True) -> None:
        """Load what the routes need; with ``background`` (a server, not an embedded CLI app) run leases and reapers."""
        await self.kv.start()
        if background:
            await self.sessions.start()
            await self.leader.start()
            self._background = True

    async def aclose(self) -> None:
        if self._background:
            await self.leader.aclose()
            await self.sessions.aclose()
        self.kv.close()
        self.catalog.close()
        self.signal.close()
