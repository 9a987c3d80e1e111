"""The echo upstream's chunking seed: one per test, derived from the test's id, so a failure replays alike.

tests/proxy/conftest.py sets it at the start of every test and re-seeds every echo upstream still
running (a module's upstream outlives its tests); an upstream started later gets it on its command line.
"""

from __future__ import annotations

import zlib
from typing import Protocol, TypeVar

import httpx

__all__ = ["current_seed", "seed_for", "set_seed", "track_upstream"]

_SEED = [0]


class _Upstream(Protocol):
    @property
    def url(self) -> str: ...

    def is_running(self) -> bool: ...


U = TypeVar("U", bound=_Upstream)
_UPSTREAMS: list[_Upstream] = []


def seed_for(test_id: str) -> int:
    return zlib.crc32(test_id.encode())


def current_seed() -> int:
    return _SEED[0]


def set_seed(seed: int) -> None:
    """Use ``seed`` from now on, in every running upstream and every one started later."""
    _SEED[0] = seed
    _UPSTREAMS[:] = [upstream for upstream in _UPSTREAMS if upstream.is_running()]
    for upstream in _UPSTREAMS:
        httpx.post(f"{upstream.url}/_seed", json={"seed": seed}, timeout=10).raise_for_status()


def track_upstream(upstream: U) -> U:
    _UPSTREAMS.append(upstream)
    return upstream
