"""``accord serve`` sizes its workers to the CPUs it may really use (issue 13, item 4).

The quota arithmetic runs on written cgroup files; the default itself runs as a real server whose
worker processes are counted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from accord.server.run import MAX_DEFAULT_WORKERS, default_workers
from tests.harness import child_env, free_port, wait_until

ACCORD = str(Path(sys.executable).with_name("accord"))
AFFINITY = len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("max 100000\n", min(AFFINITY, MAX_DEFAULT_WORKERS)),  # no quota: the affinity decides
        ("50000 100000\n", 1),  # half a CPU still gets one worker
        ("150000 100000\n", min(2, AFFINITY)),  # 1.5 CPUs round up
        ("6400000 100000\n", min(AFFINITY, MAX_DEFAULT_WORKERS)),  # 64 CPUs of quota: capped by affinity and 8
        ("garbage\n", min(AFFINITY, MAX_DEFAULT_WORKERS)),  # unreadable: ignored, not fatal
    ],
)
def test_the_cgroup_quota_bounds_the_default(tmp_path: Path, cpu_max: str, expected: int) -> None:
    path = tmp_path / "cpu.max"
    path.write_text(cpu_max)
    assert default_workers(path) == expected


def test_no_cgroup_file_means_the_affinity(tmp_path: Path) -> None:
    assert default_workers(tmp_path / "absent") == min(AFFINITY, MAX_DEFAULT_WORKERS)


def _workers_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if parent == pid and b"spawn_main" in (stat.parent / "cmdline").read_bytes():
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def test_serve_without_workers_starts_one_per_usable_cpu(tmp_path: Path) -> None:
    port = free_port()
    env = child_env({"ACCORD_DB_URL": f"sqlite:///{tmp_path / 'w.db'}"})
    argv = [ACCORD, "serve", "--port", str(port), "--log-level", "warning"]
    with (tmp_path / "stderr.log").open("wb") as err:
        proc = subprocess.Popen(
            argv, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
        )
    try:
        wait_until(lambda: _ready(port) or proc.poll() is not None, timeout=60, what="accord serve answering /healthz")
        assert proc.poll() is None, (tmp_path / "stderr.log").read_text()
        expected = default_workers()
        wait_until(
            lambda: len(_workers_of(proc.pid)) == (expected if expected > 1 else 0), timeout=30, what="its workers"
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
