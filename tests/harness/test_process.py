"""The managed-process base: one lifecycle and one wait loop, for every server of the harness."""

import sys
import time
from pathlib import Path

import pytest

from tests.harness import ManagedProcess, ServerError, wait_until


class _Scripted(ManagedProcess):
    """A python child running ``script``; healthy once it has written ``ready`` into its workdir."""

    name = "scripted"
    start_timeout = 3.0
    stop_timeout = 1.0

    def __init__(self, workdir: Path, script: str) -> None:
        super().__init__(workdir)
        self.script = script

    def command(self) -> list[str]:
        return [sys.executable, "-c", self.script]

    def prepare(self) -> None:
        (self.workdir / "ready").unlink(missing_ok=True)

    def healthy(self) -> bool:
        return (self.workdir / "ready").exists()


READY_THEN_SLEEP = (
    "import pathlib, time; print('hello from the child', flush=True); pathlib.Path('ready').touch(); time.sleep(60)"
)
IGNORES_SIGTERM = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + READY_THEN_SLEEP


def test_a_process_that_never_gets_healthy_is_killed_and_named(tmp_path: Path) -> None:
    child = _Scripted(tmp_path, "import time; print('stuck', flush=True); time.sleep(60)")
    with pytest.raises(ServerError, match=r"scripted on 127\.0\.0\.1:\d+ not healthy in 3s; log .*\n.*stuck"):
        child.start()
    assert not child.is_running()


def test_a_process_that_exits_while_starting_ends_the_wait_at_once(tmp_path: Path) -> None:
    child = _Scripted(tmp_path, "import sys; print('bad config', flush=True); sys.exit(3)")
    started = time.monotonic()
    with pytest.raises(ServerError, match=r"exited with code 3; log .*\n.*bad config"):
        child.start()
    assert time.monotonic() - started < 2.5, "the wait should end when the child exits, not at the deadline"


def test_kill_restart_and_logs_of_the_base(tmp_path: Path) -> None:
    child = _Scripted(tmp_path, READY_THEN_SLEEP)
    child.start()
    try:
        first = child.pid
        assert first is not None and child.is_running()
        with pytest.raises(ServerError, match="already running"):
            child.start()
        child.kill()
        assert not child.is_running() and child.pid is None
        assert Path(f"/proc/{first}").exists() is False, "a killed child is reaped, not left a zombie"
        child.restart()
        assert child.is_running() and child.pid != first
        assert child.logs().count("hello from the child") == 2, "logs are appended across restarts"
    finally:
        child.close()


def test_stop_kills_a_process_that_ignores_sigterm_and_says_so(tmp_path: Path) -> None:
    child = _Scripted(tmp_path, IGNORES_SIGTERM)
    child.start()
    with pytest.raises(ServerError, match="ignored SIGTERM"):
        child.stop()
    assert not child.is_running()


def test_wait_until_returns_the_probe_result_and_names_what_it_waited_for() -> None:
    answers = iter([None, 0, "", "done"])
    assert wait_until(lambda: next(answers), timeout=5, interval=0.001) == "done"
    with pytest.raises(AssertionError, match=r"timed out after 0\.05s waiting for the moon; last result: 0\nno moon"):
        wait_until(lambda: 0, timeout=0.05, interval=0.01, what="the moon", explain=lambda: "no moon")
