"""The service registry: Consul-shaped KV, sessions, catalog, health checks and the fleet, over the one store.

Applications use :func:`resolve` and :func:`register_self` (imported lazily: they need only httpx).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from accord.registry.discovery import Discovery, Registration, register_self, resolve

__all__ = ["Discovery", "Registration", "register_self", "resolve"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from accord.registry import discovery

        return getattr(discovery, name)
    raise AttributeError(f"module 'accord.registry' has no attribute {name!r}")
