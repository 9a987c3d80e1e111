"""What every cache adapter offers: JSON values by key, with an optional time to live."""

from __future__ import annotations

from typing import Protocol, TypeAlias, runtime_checkable

__all__ = ["Cache", "JsonValue"]

JsonValue: TypeAlias = dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None


@runtime_checkable
class Cache(Protocol):
    """``get`` returns None for a missing or expired key; ``set`` with ``ttl_s=None`` keeps the value until deleted."""

    async def get(self, key: str) -> JsonValue: ...

    async def set(self, key: str, value: JsonValue, *, ttl_s: float | None = None) -> None: ...

    async def delete(self, key: str) -> bool: ...

    async def aclose(self) -> None: ...
