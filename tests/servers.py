"""Real Redis and PostgreSQL server processes owned by the test suite.

Tests that exercise failure handling need servers they may kill and restart, which rules out fakes
and the shared system instances. Every failure raises `ServerError` naming what could not be done,
because a silently skipped infrastructure test hides exactly the bugs these servers exist to catch.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

PG_OS_USER = "postgres"
PG_SUPERUSER = "postgres"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
_UNIX_SOCKET_PATH_MAX = 107
_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SETTINGS_MARKER = "# accord test-suite settings"
_INSTANCE_CONF = "accord_instance.conf"


class ServerError(RuntimeError):
    """A test server could not be started, stopped or reached."""


class _Closable(Protocol):
    def close(self) -> None: ...


_live: set[_Closable] = set()


@atexit.register
def _close_leftovers() -> None:
    """Last line of defence against orphan servers when a fixture finalizer never ran."""
    for server in list(_live):
        with contextlib.suppress(ServerError):
            server.close()


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


def _ensure_port_free(port: int, what: str) -> None:
    if port_in_use(port):
        raise ServerError(f"cannot start {what}: port {port} on 127.0.0.1 is already in use by another process")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"<{path} does not exist>"
    return "\n".join(text.splitlines()[-lines:]) or f"<{path} is empty>"


def _pid_alive(pid: int) -> bool:
    """False for zombies too: init may reap orphans late (here ~1 s) and a killed postmaster lingers meanwhile."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = raw.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def _pids_with_cwd(directory: Path) -> list[int]:
    """Every PostgreSQL process chdirs into its data directory, and keeps it even after reparenting to init."""
    target = str(directory.resolve())
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/cwd") == target:
                pids.append(int(entry))
        except OSError:
            continue
    return pids


class _ProcessExitedError(Exception):
    """Raised from a readiness probe when the process is gone, so the wait ends before the timeout."""


def _wait_for(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    try:
        while not check():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
    except _ProcessExitedError:
        return False
    return True


def _clean_env() -> dict[str, str]:
    """Strip PG* variables so a developer's PGHOST or PGDATABASE cannot redirect us to the shared server."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _ping_redis(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _accepts_tcp(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class RedisServer:
    """A private redis-server child process that comes back empty after every restart.

    Runs in the foreground (no --daemonize) so SIGKILL hits the server itself and the exit can be awaited.
    """

    def __init__(self, workdir: Path, port: int | None = None, *, executable: str = "redis-server") -> None:
        self.workdir = workdir
        self.port = port if port is not None else free_port()
        self.executable = executable
        self.log_path = workdir / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.is_running():
            raise ServerError(f"redis-server on port {self.port} is already running")
        binary = shutil.which(self.executable)
        if binary is None:
            raise ServerError(f"cannot start Redis: executable {self.executable!r} not found")
        _ensure_port_free(self.port, f"redis-server ({binary})")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._forget_previous_data()
        config = self._write_config()
        self._reap()
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [binary, str(config)], stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        _live.add(self)
        if not _wait_for(self._ready, START_TIMEOUT):
            exited = self._proc.poll()
            self.kill()
            state = f"exited with code {exited}" if exited is not None else f"did not answer PING in {START_TIMEOUT}s"
            raise ServerError(
                f"redis-server on 127.0.0.1:{self.port} {state}; log {self.log_path}:\n{_tail(self.log_path)}"
            )

    def stop(self) -> None:
        """SIGTERM lets Redis shut down cleanly; with no save points configured it writes nothing to disk."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
                raise ServerError(
                    f"redis-server on port {self.port} ignored SIGTERM for {STOP_TIMEOUT}s and was killed"
                ) from None
        self._reap()

    def kill(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            try:
                self._proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise ServerError(f"redis-server pid {self._proc.pid} survived SIGKILL for {STOP_TIMEOUT}s") from None
        self._reap()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """For finalizers: stop gracefully if possible, never leave the process behind."""
        try:
            self.stop()
        finally:
            self.kill()

    def _ready(self) -> bool:
        if self._proc is None or self._proc.poll() is not None:
            raise _ProcessExitedError
        return _ping_redis(self.port)

    def _reap(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            self._proc = None
        if self._log is not None and self._proc is None:
            self._log.close()
            self._log = None
        if self._proc is None:
            _live.discard(self)

    def _forget_previous_data(self) -> None:
        """A test may have run SAVE; Redis would load that dump on start and break the empty-restart promise."""
        (self.workdir / "dump.rdb").unlink(missing_ok=True)
        shutil.rmtree(self.workdir / "appendonlydir", ignore_errors=True)

    def _write_config(self) -> Path:
        config = self.workdir / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {self.port}",
                    'save ""',
                    "appendonly no",
                    "daemonize no",
                    f'dir "{self.workdir.resolve()}"',
                    'logfile ""',
                    "",
                ]
            )
        )
        return config


def pg_bindir() -> Path:
    """Newest installed major version, so an upgraded image needs no edit here."""
    candidates = []
    for raw in glob.glob("/usr/lib/postgresql/*/bin"):
        version = Path(raw).parent.name
        if version.isdigit() and all((Path(raw) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            candidates.append((int(version), Path(raw)))
    if not candidates:
        raise ServerError("cannot start PostgreSQL: no /usr/lib/postgresql/*/bin with initdb, pg_ctl and postgres")
    return max(candidates)[1]


@dataclass(frozen=True)
class _OsUser:
    uid: int
    gid: int
    groups: frozenset[int]


def _pg_os_user() -> _OsUser | None:
    """None when we are not root: then the servers simply run as the current user."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(PG_OS_USER)
    except KeyError:
        raise ServerError(f"cannot run PostgreSQL as root and OS user {PG_OS_USER!r} does not exist") from None
    groups = frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return _OsUser(entry.pw_uid, entry.pw_gid, groups)


def _can_traverse(st: os.stat_result, user: _OsUser) -> bool:
    if st.st_uid == user.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in user.groups:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _grant_traverse(path: Path, user: _OsUser) -> None:
    """pytest makes its tmp roots 0700; adding only o+x lets postgres reach its data dir without listing anything."""
    for directory in [path, *path.parents]:
        st = directory.stat()
        if _can_traverse(st, user):
            continue
        if st.st_uid != os.geteuid():
            raise ServerError(f"OS user {PG_OS_USER!r} cannot traverse {directory} and we do not own it to fix that")
        directory.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)


class PostgresServer:
    """A private PostgreSQL cluster under `workdir`, run as the postgres OS user because postgres refuses root.

    `kill()` SIGKILLs every server process to simulate a crash; the data directory survives and `start()`
    goes through crash recovery, so committed data must still be there.
    """

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port if port is not None else free_port()
        self.data_dir = workdir / "data"
        self.run_dir = workdir / "run"
        self.log_path = self.run_dir / "postgres.log"
        self._bindir: Path | None = None
        self._user = _pg_os_user()

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
            self._run(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-A",
                    "trust",
                    "-U",
                    PG_SUPERUSER,
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                "initdb",
            )
        self._append_settings()

    def is_running(self) -> bool:
        pid = self._postmaster_pid()
        return pid is not None and _pid_alive(pid)

    def start(self) -> None:
        if not self.is_initialized():
            raise ServerError(f"cannot start PostgreSQL: {self.data_dir} is not initialized, call init() first")
        if self.is_running():
            raise ServerError(f"PostgreSQL in {self.data_dir} is already running (pid {self._postmaster_pid()})")
        _ensure_port_free(self.port, f"PostgreSQL ({self.data_dir})")
        self._prepare_dirs()
        self._remove_stale_locks()
        self._write_instance_conf()
        pg_ctl = str(self.bindir / "pg_ctl")
        command = [pg_ctl, "-D", str(self.data_dir), "-l", str(self.log_path), "-w", "-t", "30", "start"]
        _live.add(self)
        try:
            self._run(command, f"start PostgreSQL on port {self.port}")
        except ServerError:
            self.kill()
            raise
        if not _wait_for(lambda: _accepts_tcp(self.port), START_TIMEOUT):
            raise ServerError(
                f"PostgreSQL reported ready but 127.0.0.1:{self.port} refuses connections; "
                f"log {self.log_path}:\n{_tail(self.log_path)}"
            )

    def stop(self) -> None:
        if self.is_running():
            pg_ctl = str(self.bindir / "pg_ctl")
            self._run([pg_ctl, "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop"], "stop PostgreSQL")
        _live.discard(self)

    def kill(self) -> None:
        """SIGKILL the postmaster first so it cannot fork more backends, then every straggler in the data dir."""
        pid = self._postmaster_pid()
        if pid is not None and _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_TIMEOUT
        while survivors := [p for p in _pids_with_cwd(self.data_dir) if _pid_alive(p)]:
            if time.monotonic() >= deadline:
                raise ServerError(f"PostgreSQL processes {survivors} in {self.data_dir} survived SIGKILL")
            for survivor in survivors:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(survivor, signal.SIGKILL)
            time.sleep(0.02)
        _live.discard(self)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """For finalizers: a fast stop if possible, a kill otherwise, never an orphan."""
        try:
            self.stop()
        finally:
            self.kill()

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

    def _psql(self, sql: str, what: str) -> None:
        dsn = f"host=127.0.0.1 port={self.port} user={PG_SUPERUSER} dbname=postgres connect_timeout=5"
        self._run([str(self.bindir / "psql"), dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], what, as_pg=False)

    def _postmaster_pid(self) -> int | None:
        try:
            first_line = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        except FileNotFoundError:
            return None
        return int(first_line) if first_line.strip().isdigit() else None

    def _remove_stale_locks(self) -> None:
        """A killed postmaster may still be an unreaped zombie, and PostgreSQL takes a zombie's pid as alive."""
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        for leftover in self.run_dir.glob(f".s.PGSQL.{self.port}*"):
            leftover.unlink(missing_ok=True)

    def _prepare_dirs(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(mode=0o755, exist_ok=True)
        self._chown(self.run_dir)
        if self._user is not None:
            _grant_traverse(self.workdir, self._user)
        socket_path = self.run_dir / f".s.PGSQL.{self.port}"
        if len(str(socket_path.resolve())) > _UNIX_SOCKET_PATH_MAX:
            raise ServerError(f"PostgreSQL unix socket path {socket_path} is too long; use a shorter workdir")

    def _append_settings(self) -> None:
        conf = self.data_dir / "postgresql.conf"
        if _SETTINGS_MARKER in conf.read_text():
            return
        with conf.open("a") as handle:
            handle.write(f"\n{_SETTINGS_MARKER}\nmax_connections = 200\ninclude_if_exists = '{_INSTANCE_CONF}'\n")

    def _write_instance_conf(self) -> None:
        """Rewritten on every start so a data dir copied from a template gets this instance's port and socket dir."""
        conf = self.data_dir / _INSTANCE_CONF
        conf.write_text(
            f"port = {self.port}\n"
            "listen_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.run_dir.resolve()}'\n"
        )
        self._chown(conf)

    def _chown(self, path: Path) -> None:
        if self._user is not None:
            os.chown(path, self._user.uid, self._user.gid)

    def _run(self, command: list[str], what: str, *, as_pg: bool = True) -> None:
        if as_pg and self._user is not None:
            command = ["runuser", "-u", PG_OS_USER, "--", *command]
        try:
            result = subprocess.run(
                command,
                cwd=self.workdir,
                env=_clean_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except FileNotFoundError as exc:
            raise ServerError(f"cannot {what}: executable {exc.filename!r} not found") from None
        except subprocess.TimeoutExpired:
            raise ServerError(f"cannot {what}: {command[0]} hung for 60s; log:\n{_tail(self.log_path)}") from None
        if result.returncode != 0:
            raise ServerError(
                f"cannot {what} (exit {result.returncode}): {' '.join(command)}\n"
                f"stdout: {result.stdout.strip()}\nstderr: {result.stderr.strip()}\n"
                f"log {self.log_path}:\n{_tail(self.log_path)}"
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
