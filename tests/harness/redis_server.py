"""A private redis-server that comes back empty after every restart."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import ClassVar

from tests.harness.process import ManagedProcess, ServerError


def ping_redis(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer(ManagedProcess):
    """redis-server in the foreground (no --daemonize), with no save points, so a restart is an empty Redis."""

    name: ClassVar[str] = "redis"
    start_timeout: ClassVar[float] = 10.0

    def __init__(self, workdir: Path, port: int | None = None, *, executable: str = "redis-server") -> None:
        super().__init__(workdir, port)
        self.executable = executable

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        binary = shutil.which(self.executable)
        if binary is None:
            raise ServerError(f"cannot start Redis: executable {self.executable!r} not found")
        return [binary, str(self.workdir / "redis.conf")]

    def prepare(self) -> None:
        """A test may have run SAVE; Redis would load that dump on start and break the empty-restart promise."""
        (self.workdir / "dump.rdb").unlink(missing_ok=True)
        shutil.rmtree(self.workdir / "appendonlydir", ignore_errors=True)
        settings = ["bind 127.0.0.1", f"port {self.port}", 'save ""', "appendonly no", "daemonize no"]
        settings += [f'dir "{self.workdir.resolve()}"', 'logfile ""', ""]
        (self.workdir / "redis.conf").write_text("\n".join(settings))

    def healthy(self) -> bool:
        return ping_redis(self.port)
