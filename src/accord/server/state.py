"""What a server process holds: its LiveConfig (a mirror of config/ and acl/), token index and admin."""

from __future__ import annotations

from dataclasses import dataclass

from accord.auth.tokens import TokenIndex
from accord.config.admin import ConfigAdmin
from accord.config.live import LiveConfig
from accord.server.metrics import Metrics


@dataclass
class ServerState:
    live: LiveConfig
    tokens: TokenIndex
    admin: ConfigAdmin
    metrics: Metrics
    # Set when the process is told to stop (server/draining.py): endless streams (/api/watch, the remote
    # stream) end, so uvicorn, which waits for every request in flight, can exit; clients resume elsewhere.
    stopping: bool = False
