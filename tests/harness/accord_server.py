"""`accord serve` as a real child process: the one harness class the server and the CLI tests share."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx

from tests.harness.http_process import HttpProcess, child_env

TOKEN_RE = re.compile(r"acc_[A-Za-z0-9_\-]{20,}")
ACCORD = str(Path(sys.executable).with_name("accord"))
# `accord serve` with the root logger at DEBUG first: accord, SQLAlchemy (statements and parameters), asyncpg
# and redis-py then log everything they have to say, which is what a leak test wants to search.
DEBUG_EVERYTHING = (
    "import logging, sys; logging.basicConfig(level=logging.DEBUG, format='%(levelname)s %(name)s: %(message)s'); "
    "logging.getLogger('sqlalchemy').setLevel(logging.DEBUG); "
    "sys.argv[0] = 'accord'; from accord.cli.app import main; main()"
)


class AccordServer(HttpProcess):
    """One `accord serve` on `db_url` (and `redis_url`, "" for none); stdout and stderr go to separate files.

    The URLs reach the server in its environment; ``args`` are added to its command line (``db_url=""`` and
    ``args=("--db-url", ...)`` test the flag instead).

    ``token`` is the management token the server printed on its first start on an empty store (None on a
    store that already had one). With ``expect_token`` the start waits for it too, as the CLI tests want.
    """

    name: ClassVar[str] = "accord-serve"
    start_timeout: ClassVar[float] = 90.0  # migrations on a busy machine

    def __init__(
        self,
        db_url: str,
        redis_url: str | None,
        workdir: Path,
        *,
        log_level: str = "debug",
        debug_everything: bool = False,
        env: dict[str, str] | None = None,
        port: int | None = None,
        expect_token: bool = False,
        args: tuple[str, ...] = (),
    ) -> None:
        self.db_url = db_url
        self.redis_url = redis_url or ""
        self.expect_token = expect_token
        self._token: str | None = None
        # the URLs travel in the environment, as in production: a password in argv would show in `ps`
        urls = ({"ACCORD_DB_URL": db_url} if db_url else {}) | (
            {"ACCORD_REDIS_URL": self.redis_url} if self.redis_url else {}
        )
        launcher = [sys.executable, "-c", DEBUG_EVERYTHING] if debug_everything else [ACCORD]
        super().__init__(workdir, launcher, child_env(urls | (env or {})), port=port)
        # One worker unless a test asks for more: the default (one per CPU) would double every server's cost.
        workers = () if "--workers" in args else ("--workers", "1")
        self._command = [*launcher, "serve", "--port", str(self.port), "--log-level", log_level, *workers, *args]

    @property
    def addr(self) -> str:
        """What ACCORD_ADDR is set to for a CLI talking to this server (the same as `url`)."""
        return self.url

    @property
    def stdout_path(self) -> Path:
        return self.workdir / "stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / "stderr.log"

    def start(self) -> AccordServer:
        super().start()
        return self

    @property
    def token(self) -> str | None:
        """Looked up in stdout until found: the server may print it a moment after /healthz answers."""
        if self._token is None and self.stdout_path.exists():
            found = TOKEN_RE.search(self.stdout_path.read_text(errors="replace"))
            self._token = found.group(0) if found else None
        return self._token

    def healthy(self) -> bool:
        return super().healthy() and (self.token is not None or not self.expect_token)

    def client(self, token: str | None = None, *, headers: dict[str, str] | None = None) -> httpx.Client:
        sent = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=sent | (headers or {}), timeout=30.0)

    def admin(self) -> httpx.Client:
        assert self.token, "this server did not print a management token"
        return self.client(self.token)


@dataclass
class AccordServers:
    """Servers a test starts on demand, each in its own workdir under `workdir`; `close` stops every one."""

    workdir: Path
    started: list[AccordServer] = field(default_factory=list)

    def start(self, db_url: str, redis_url: str | None = "", **options: Any) -> AccordServer:
        server = AccordServer(db_url, redis_url, self.workdir / f"server-{len(self.started)}", **options)
        self.started.append(server)
        return server.start()

    def close(self) -> None:
        for server in self.started:
            server.close()
