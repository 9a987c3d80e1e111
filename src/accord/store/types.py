"""Values the store hands out and the Protocol every store backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from accord.core.crypto import Cipher

Op = Literal["put", "delete"]


@dataclass(frozen=True, slots=True)
class Deployment:
    """Who this database is on shared infrastructure: ``id`` namespaces its Redis keys, ``bus_key`` signs its bus.

    Both are read from the database (created once by a migration), never from Redis.
    """

    id: str
    bus_key: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Entry:
    """The current state of one key."""

    key: str
    value: bytes
    version: int
    create_revision: int
    mod_revision: int
    secret: bool
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class Change:
    """One committed mutation; a history row and a bus message are both this.

    ``value`` is None for deletes, and for puts whose value was too large to travel on the bus
    (``value_omitted``): the receiver then fetches the key.
    """

    revision: int
    key: str
    op: Op
    version: int
    value: bytes | None
    secret: bool = False
    actor: str = ""
    at: datetime | None = None
    value_omitted: bool = False
    action: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class WriteContext:
    """Who writes and why, recorded with every history row: history doubles as the audit trail."""

    actor: str = ""
    action: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class PutItem:
    """One write of a batch."""

    key: str
    value: bytes
    expect_version: int | None = None
    secret: bool = False


@dataclass(frozen=True, slots=True)
class DeleteItem:
    """One delete of a mixed batch (``write_batch``)."""

    key: str
    expect_version: int | None = None


BatchItem = PutItem | DeleteItem


@dataclass(frozen=True)
class AuditFilter:
    """Which history rows an audit query returns (newest first, at most ``limit``)."""

    key_prefix: str = ""
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    before_revision: int | None = None
    limit: int = 100


AuditRow = tuple[Change, bytes | None, bool]
"""A change, the value it replaced, and whether that value was secret."""


class Timers(Protocol):
    """Named deadlines in database time (leases, TTL checks, heartbeats); not revisioned: no history, no bus."""

    async def arm(self, name: str, seconds: float) -> None: ...

    async def arm_absent(self, name: str, seconds: float) -> bool: ...

    async def disarm(self, name: str) -> None: ...

    async def expired(self, prefix: str = "") -> list[str]: ...

    async def alive(self, prefix: str = "") -> list[str]: ...

    async def acquire(self, name: str, holder: str, seconds: float) -> bool: ...

    async def release(self, name: str, holder: str) -> None: ...

    async def holder(self, name: str) -> str | None: ...


class KVStore(Protocol):
    """The revisioned store: every mutation bumps one global revision in its own transaction.

    Callers hold this role, never a driver: what they need of the database (where to LISTEN, the
    key that seals its secrets, a name to show) is asked of the store, so no URL with a password
    travels beyond it.
    """

    @property
    def url(self) -> str:
        """The database URL with its password hidden, for messages and logs."""
        ...

    @property
    def identity(self) -> str:
        """A non-secret name of the database: equal for every store object opened on the same database."""
        ...

    def listen_dsn(self) -> str | None:
        """Where a LISTEN connection for change notifications goes; None when the database has no NOTIFY."""
        ...

    def cipher(self) -> Cipher:
        """The cipher every process on this database shares, loaded anew on each call (keys may rotate)."""
        ...

    async def migrate(self) -> None:
        """Bring the schema to head (safe when many processes do it at once)."""
        ...

    async def deployment(self) -> Deployment:
        """This database's deployment id and bus key (read once, then remembered)."""
        ...

    async def audit(self, flt: AuditFilter) -> list[AuditRow]: ...

    async def current_revision(self) -> int: ...

    async def get(self, key: str) -> Entry | None: ...

    async def snapshot(self, prefix: str | Sequence[str] = "") -> tuple[int, list[Entry]]: ...

    async def put(
        self,
        key: str,
        value: bytes,
        *,
        expect_version: int | None = None,
        actor: str = "",
        secret: bool = False,
        ctx: WriteContext | None = None,
    ) -> Change: ...

    async def put_many(
        self, items: Sequence[PutItem], *, actor: str = "", ctx: WriteContext | None = None
    ) -> list[Change]: ...

    async def delete(
        self, key: str, *, expect_version: int | None = None, actor: str = "", ctx: WriteContext | None = None
    ) -> Change: ...

    async def write_batch(self, items: Sequence[BatchItem], *, ctx: WriteContext | None = None) -> list[Change]:
        """Puts and deletes in one transaction (one revision each): all of them or, on any error, none."""
        ...

    async def latest_deletes(self, prefix: str) -> dict[str, int]:
        """For each key under ``prefix`` that does not exist now, the revision of its last delete (tombstones)."""
        ...

    async def history(self, key: str, *, limit: int | None = None) -> list[Change]: ...

    async def rollback(
        self, key: str, to_version: int, *, actor: str = "", ctx: WriteContext | None = None
    ) -> Change: ...

    async def value_at(self, key: str, revision: int) -> Change | None: ...

    async def changes_since(self, revision: int, *, limit: int | None = None) -> list[Change]: ...

    async def compact(self, below_revision: int) -> int: ...

    async def put_schemas(self, specs: dict[str, str], *, actor: str = "") -> list[Change]: ...

    async def get_schemas(self) -> dict[str, str]: ...

    def timers(self) -> Timers:
        """The store's timers (``store/timers.py``): liveness kept beside the revisioned entries."""
        ...

    async def aclose(self) -> None: ...
