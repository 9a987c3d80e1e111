"""The managed-process base every server of the suite is built on: start, wait healthy, stop, kill, restart, logs.

Each server is a direct child of the test process (never daemonized, never behind a wrapper), so SIGKILL
hits the server itself, its exit can be awaited, and a test that kills it simulates a real crash.
Every failure raises `ServerError` naming what could not be done and the tail of the log, because a
silently skipped infrastructure test hides exactly the bugs these servers exist to catch.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, ClassVar, TypeVar

from tests.harness.ports import free_port, port_in_use
from tests.harness.waiting import wait_until

_live: set[ManagedProcess] = set()
P = TypeVar("P", bound="ManagedProcess")


class ServerError(RuntimeError):
    """A test server could not be started, stopped or reached."""


class ProcessExitedError(ServerError):
    """Raised from a health probe when the process is gone, so the wait ends before the timeout."""


@atexit.register
def _close_leftovers() -> None:
    """Last line of defence against orphan servers when a fixture finalizer never ran."""
    for process in list(_live):
        with contextlib.suppress(ServerError):
            process.close()


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"<{path} does not exist>"
    return "\n".join(text.splitlines()[-lines:]) or f"<{path} is empty>"


class ManagedProcess:
    """One server process on 127.0.0.1:`port` with its logs under `workdir`; it keeps its port across restarts.

    Subclasses say how to run it (`command`, `environment`, `prepare`) and when it is usable (`healthy`);
    `after_exit` cleans up what a crash leaves behind. Logs are appended to, so they survive restarts.
    """

    name: ClassVar[str] = "process"
    start_timeout: ClassVar[float] = 30.0
    stop_timeout: ClassVar[float] = 10.0
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port if port is not None else free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._files: list[IO[bytes]] = []

    # --- what a subclass says -------------------------------------------------------------------

    def command(self) -> list[str]:
        raise NotImplementedError

    def healthy(self) -> bool:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        """None inherits the test process's environment."""
        return None

    def popen_options(self) -> dict[str, Any]:
        """Extra `subprocess.Popen` arguments (PostgreSQL uses them to drop root)."""
        return {}

    def prepare(self) -> None:
        """Runs before every launch (config files, stale data)."""

    def after_exit(self) -> None:
        """Runs once the process has exited, by stop or kill (PostgreSQL reaps stray backends here)."""

    # --- the lifecycle ----------------------------------------------------------------------------

    @property
    def stdout_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def stderr_path(self) -> Path:
        return self.stdout_path

    @property
    def log_path(self) -> Path:
        return self.stderr_path

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.is_running() and self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> ManagedProcess:
        self.launch()
        self.wait_healthy()
        return self

    def launch(self) -> None:
        """Start without waiting, for starting several side by side; `wait_healthy` then waits for each."""
        if self.is_running():
            raise ServerError(f"{self.name} on port {self.port} is already running")
        if port_in_use(self.port):
            raise ServerError(f"cannot start {self.name}: port {self.port} on 127.0.0.1 is already in use")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        self._launch()

    def wait_healthy(self, timeout: float | None = None) -> None:
        """The one wait-until-healthy loop: ends early, with the log, if the process exits meanwhile."""
        limit = self.start_timeout if timeout is None else timeout
        try:
            wait_until(self._probe, timeout=limit, what=f"{self.name} on port {self.port} to be healthy")
        except ProcessExitedError:
            code = self._proc.returncode if self._proc is not None else None
            self._finish()
            raise ServerError(
                f"{self.name} on 127.0.0.1:{self.port} exited with code {code}; {self._log_tail()}"
            ) from None
        except AssertionError:
            self.kill()
            raise ServerError(
                f"{self.name} on 127.0.0.1:{self.port} not healthy in {limit:g}s; {self._log_tail()}"
            ) from None

    def stop(self) -> None:
        """A graceful shutdown; a process that ignores it is killed and the test fails."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(self.stop_signal)
            try:
                self._proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise ServerError(f"{self.name} ignored {self.stop_signal.name} for {self.stop_timeout}s") from None
        self._finish()

    def kill(self) -> None:
        """SIGKILL: a crash, as far as the server and its clients can tell."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            try:
                self._proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                raise ServerError(f"{self.name} pid {self._proc.pid} survived SIGKILL") from None
        self._finish()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """For finalizers: stop gracefully if possible, never leave the process behind."""
        try:
            self.stop()
        finally:
            self.kill()

    def logs(self) -> str:
        paths = dict.fromkeys([self.stdout_path, self.stderr_path])
        return "".join(path.read_text(errors="replace") for path in paths if path.exists())

    # --- internals --------------------------------------------------------------------------------

    def _launch(self) -> None:
        command = self.command()
        out = self.stdout_path.open("ab")
        err = out if self.stderr_path == self.stdout_path else self.stderr_path.open("ab")
        self._files = list(dict.fromkeys([out, err]))
        try:
            self._proc = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                **self.popen_options(),
            )
        except OSError as exc:
            self._close_files()
            raise ServerError(f"cannot start {self.name}: {exc}") from None
        _live.add(self)

    def _probe(self) -> bool:
        if self._proc is None or self._proc.poll() is not None:
            raise ProcessExitedError(self.name)
        return self.healthy()

    def _finish(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        had_process = self._proc is not None
        self._proc = None
        self._close_files()
        _live.discard(self)
        if had_process:
            self.after_exit()

    def _close_files(self) -> None:
        for handle in self._files:
            handle.close()
        self._files = []

    def _log_tail(self) -> str:
        return f"log {self.log_path}:\n{tail(self.log_path)}" + (
            f"\nstdout {self.stdout_path}:\n{tail(self.stdout_path)}" if self.stdout_path != self.stderr_path else ""
        )


@contextlib.contextmanager
def running(process: P) -> Iterator[P]:
    """`process`, started, and closed when the block ends whatever happens (the shape of every fixture here)."""
    process.start()
    try:
        yield process
    finally:
        process.close()
