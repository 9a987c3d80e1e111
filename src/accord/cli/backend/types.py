"""What a command asks of its backend: the Protocol both backends implement, and the request types.

Imports nothing heavy, so a command that goes over HTTP never loads the database stack.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from accord.cli.progress import Meter

Row = dict[str, Any]
Rows = list[Row]

HISTORY_FIELDS = ("revision", "version", "op", "value", "actor", "at")
MAX_TTL_S = 10 * 365 * 86400


@dataclass(frozen=True)
class AuditQuery:
    prefix: str = ""
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    limit: int = 100


@dataclass(frozen=True)
class TokenRequest:
    name: str
    rules: tuple[str, ...]
    reveal_secrets: bool = False
    ttl_seconds: int | None = None


class Backend(Protocol):
    """Everything the commands need, as JSON-ready rows with secrets masked."""

    async def status(self) -> Row: ...

    async def settings(self, prefix: str) -> Rows: ...

    async def setting(self, path: str, *, reveal: bool = False, env: str | None = None) -> Row: ...

    async def set_input(
        self,
        path: str,
        raw: str,
        *,
        expect_version: int | None,
        env: str | None = None,
        wait_applied: str | None = None,
    ) -> Row: ...

    async def instances(self) -> Rows: ...

    async def unset(self, path: str, *, env: str | None = None) -> Row: ...

    async def history(self, path: str, *, limit: int | None) -> Rows: ...

    async def rollback(self, path: str, to_version: int | None, to_revision: int | None = None) -> Row: ...

    async def diff(self, from_revision: int, to_revision: int | None) -> Row: ...

    def export(self, meter: Meter, *, sealed: bool = False) -> AsyncIterator[bytes]: ...

    async def import_values(self, values: Mapping[str, object], *, dry_run: bool, meter: Meter) -> Row: ...

    async def migrate(self, data: Mapping[str, Any], *, dry_run: bool) -> Row: ...

    async def audit(self, query: AuditQuery) -> Rows: ...

    async def tokens(self) -> Rows: ...

    async def create_token(self, request: TokenRequest) -> Row: ...

    async def revoke_token(self, name: str) -> Row: ...

    async def aclose(self) -> None: ...


def pick(row: Row, fields: tuple[str, ...]) -> Row:
    return {name: row.get(name) for name in fields}
