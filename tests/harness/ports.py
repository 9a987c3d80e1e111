"""Loopback ports for the processes the suite starts."""

from __future__ import annotations

import errno
import socket


def free_port() -> int:
    """A port that was free a moment ago; callers accept the small race in exchange for parallel-safe tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port, using SO_REUSEADDR like the servers do so TIME_WAIT is ignored."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
        return False
