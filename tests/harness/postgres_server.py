"""A private PostgreSQL cluster: the postmaster itself is the managed child, run as the postgres OS user.

`kill()` SIGKILLs the postmaster and every backend it leaves behind, to simulate a crash; the data
directory survives and `start()` goes through crash recovery, so committed data must still be there.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from tests.harness.os_user import OsUser, grant_traverse, postgres_os_user
from tests.harness.process import ManagedProcess, ServerError, tail

PG_SUPERUSER = "postgres"
_UNIX_SOCKET_PATH_MAX = 107
_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SETTINGS_MARKER = "# accord test-suite settings"


def pg_bindir() -> Path:
    """Newest installed major version, so an upgraded image needs no edit here."""
    candidates = []
    for raw in glob.glob("/usr/lib/postgresql/*/bin"):
        version = Path(raw).parent.name
        if version.isdigit() and all((Path(raw) / tool).is_file() for tool in ("initdb", "postgres", "pg_isready")):
            candidates.append((int(version), Path(raw)))
    if not candidates:
        raise ServerError("cannot start PostgreSQL: no /usr/lib/postgresql/*/bin with initdb, postgres and pg_isready")
    return max(candidates)[1]


def clean_env() -> dict[str, str]:
    """Strip PG* variables so a developer's PGHOST or PGDATABASE cannot redirect us to the shared server."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _pid_alive(pid: int) -> bool:
    """False for zombies too: init may reap orphans late, and a killed backend lingers meanwhile."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return raw.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _pids_with_cwd(directory: Path) -> list[int]:
    """Every PostgreSQL process chdirs into its data directory, and keeps it after reparenting to init."""
    target = str(directory.resolve())
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{entry}/cwd") == target:
                    pids.append(int(entry))
    return pids


class PostgresServer(ManagedProcess):
    """A cluster under `workdir` (data in `data/`, socket and log in `run/`); `init()` before the first start."""

    name: ClassVar[str] = "postgres"
    start_timeout: ClassVar[float] = 60.0
    stop_timeout: ClassVar[float] = 30.0
    stop_signal: ClassVar[signal.Signals] = signal.SIGINT  # "fast" shutdown: roll back sessions, checkpoint, exit

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port)
        self.data_dir = workdir / "data"
        self.run_dir = workdir / "run"
        self._bindir: Path | None = None
        self._user = postgres_os_user()

    @property
    def stdout_path(self) -> Path:
        return self.run_dir / "postgres.log"

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = pg_bindir()
        return self._bindir

    def url_for(self, name: str) -> str:
        return f"postgresql://{PG_SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def is_initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def init(self, template: Path | None = None) -> None:
        """Idempotent. `template` is a data dir from another never-started `init()`; copying it skips initdb's ~1 s."""
        self._prepare_dirs()
        if self.is_initialized():
            return
        if template is not None:
            if not (template / "PG_VERSION").is_file():
                raise ServerError(f"cannot copy PostgreSQL template {template}: it is not an initialized data dir")
            self._run(["cp", "-a", str(template), str(self.data_dir)], "copy the template data dir", as_pg=False)
        else:
            self.data_dir.mkdir(mode=0o700)
            self._chown(self.data_dir)
            initdb = [str(self.bindir / "initdb"), "-D", str(self.data_dir), "-A", "trust", "-U", PG_SUPERUSER]
            self._run([*initdb, "-E", "UTF8", "--locale=C", "--no-sync"], "initdb")
        conf = self.data_dir / "postgresql.conf"
        if _SETTINGS_MARKER not in conf.read_text():
            with conf.open("a") as handle:
                handle.write(f"\n{_SETTINGS_MARKER}\nmax_connections = 200\n")

    def destroy(self) -> None:
        """Close and delete the ~40 MB data dir, which pytest would otherwise keep for three sessions; logs stay."""
        try:
            self.close()
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def create_database(self, name: str) -> str:
        self._psql(f'CREATE DATABASE "{_checked_db_name(name)}"', f"create database {name!r}")
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """FORCE, because a test that leaks a connection must not make teardown fail."""
        self._psql(f'DROP DATABASE IF EXISTS "{_checked_db_name(name)}" WITH (FORCE)', f"drop database {name!r}")

    # --- ManagedProcess hooks ---------------------------------------------------------------------

    def command(self) -> list[str]:
        """Port and socket dir on the command line, so a data dir copied from a template needs no rewrite."""
        instance = [f"port={self.port}", "listen_addresses=127.0.0.1", f"unix_socket_directories={self.run_dir}"]
        return [str(self.bindir / "postgres"), "-D", str(self.data_dir), *(f"-c{item}" for item in instance)]

    def environment(self) -> dict[str, str]:
        return clean_env()

    def popen_options(self) -> dict[str, Any]:
        """Postgres refuses to run as root; Popen drops to the postgres user so the postmaster stays our child."""
        return {} if self._user is None else self._user.popen_options()

    def prepare(self) -> None:
        if not self.is_initialized():
            raise ServerError(f"cannot start PostgreSQL: {self.data_dir} is not initialized, call init() first")
        self._prepare_dirs()
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)  # left by a kill; its pid may be reused
        for leftover in self.run_dir.glob(f".s.PGSQL.{self.port}*"):
            leftover.unlink(missing_ok=True)

    def healthy(self) -> bool:
        """pg_isready, because PostgreSQL accepts TCP connections while it still refuses sessions in recovery."""
        probe = [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "2"]
        return subprocess.run(probe, env=clean_env(), stdin=subprocess.DEVNULL, check=False).returncode == 0

    def after_exit(self) -> None:
        """Backends outlive a SIGKILLed postmaster for a moment, holding shared memory the next start needs."""
        deadline = time.monotonic() + self.stop_timeout
        while survivors := [pid for pid in _pids_with_cwd(self.data_dir) if _pid_alive(pid)]:
            if time.monotonic() >= deadline:
                raise ServerError(f"PostgreSQL processes {survivors} in {self.data_dir} survived SIGKILL")
            for survivor in survivors:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(survivor, signal.SIGKILL)
            time.sleep(0.02)

    # --- internals --------------------------------------------------------------------------------

    def _psql(self, sql: str, what: str) -> None:
        dsn = f"host=127.0.0.1 port={self.port} user={PG_SUPERUSER} dbname=postgres connect_timeout=5"
        self._run([str(self.bindir / "psql"), dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], what, as_pg=False)

    def _prepare_dirs(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(mode=0o755, exist_ok=True)
        self._chown(self.run_dir)
        if self._user is not None:
            grant_traverse(self.workdir, self._user)
        socket_path = self.run_dir / f".s.PGSQL.{self.port}"
        if len(str(socket_path.resolve())) > _UNIX_SOCKET_PATH_MAX:
            raise ServerError(f"PostgreSQL unix socket path {socket_path} is too long; use a shorter workdir")

    def _chown(self, path: Path) -> None:
        if self._user is not None:
            os.chown(path, self._user.uid, self._user.gid)

    def _run(self, command: list[str], what: str, *, as_pg: bool = True) -> None:
        user: OsUser | None = self._user if as_pg else None
        options: dict[str, Any] = {} if user is None else user.popen_options()
        try:
            result = subprocess.run(
                command,
                cwd=self.workdir,
                env=clean_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                **options,
            )
        except FileNotFoundError as exc:
            raise ServerError(f"cannot {what}: executable {exc.filename!r} not found") from None
        except subprocess.TimeoutExpired:
            raise ServerError(f"cannot {what}: {command[0]} hung for 60s; log:\n{tail(self.log_path)}") from None
        if result.returncode != 0:
            raise ServerError(
                f"cannot {what} (exit {result.returncode}): {' '.join(command)}\n"
                f"stdout: {result.stdout.strip()}\nstderr: {result.stderr.strip()}\n"
                f"log {self.log_path}:\n{tail(self.log_path)}"
            )


def _checked_db_name(name: str) -> str:
    if not _DB_NAME.fullmatch(name):
        raise ValueError(f"database name {name!r} must match {_DB_NAME.pattern} so it needs no quoting")
    return name


@dataclass(frozen=True)
class PostgresDatabase:
    """One database on a dedicated server: tests connect through `url` and crash the cluster through `server`."""

    server: PostgresServer
    name: str

    @property
    def url(self) -> str:
        return self.server.url_for(self.name)
