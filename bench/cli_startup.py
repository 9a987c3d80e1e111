"""Wall time of CLI commands, start to exit, beside `python -c pass` measured in the same run.

Times `accord --version`, `accord config get PATH` over HTTP (a real `accord serve` on a temporary
SQLite database, on a free port) and `accord config get PATH` on the SQLite database directly. The
commands run interleaved, one of each per round, so they share whatever else the machine is doing.
Each is a fresh process, so the figures include the interpreter's start-up and every import.
With ``--compare SRC`` every accord command also runs on another source tree in the same rounds
(``<label>@compare``), for a same-run before/after; each command's CPU time (user + system, from the
child's rusage) is reported beside its wall time, since CPU time moves less with the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx

import accord
from _common import BenchError, emit, machine, note, summary
from accord import Setting, SettingsGroup

ACCORD = str(Path(sys.executable).with_name("accord"))
PATH = "bench.model"
TARGETS_S = {"version": 0.3, "config_get_http": 0.4}
TOKEN_RE = re.compile(r"acc_[A-Za-z0-9_\-]{20,}")


class Bench(SettingsGroup, category="bench"):
    model: str = Setting("gpt-4o", description="a declared setting for the CLI to read")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def prepare(db_url: str) -> None:
    """Declare the setting (its schema goes into the store) and store a value, as an application would."""
    cfg = await accord.connect(db_url, "", groups=[Bench], watch=False, use_env=False)
    try:
        await cfg.set(PATH, "bge-m3")
    finally:
        await cfg.aclose()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    return env | {"COLUMNS": "200"} | extra


def start_server(workdir: Path, db_url: str) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    out = (workdir / "serve.out").open("wb")
    args = [ACCORD, "serve", "--port", str(port), "--db-url", db_url, "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.DEVNULL, env=clean_env(), cwd=workdir)
    addr = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"accord serve exited with {proc.returncode}")
        token = TOKEN_RE.search((workdir / "serve.out").read_text(errors="replace"))
        try:
            if token and httpx.get(f"{addr}/healthz", timeout=1).status_code == 200:
                return proc, addr, token.group(0)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise BenchError("accord serve did not become healthy within 60 s")


def timed(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of ``args``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(args)} exited with {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def commands(addr: str, token: str, db_url: str, pythonpath: str | None) -> dict[str, tuple[list[str], dict[str, str]]]:
    """The measured commands; with ``pythonpath`` the accord ones import accord from there (another checkout)."""
    extra = {"PYTHONPATH": pythonpath} if pythonpath else {}
    todo = {
        "python_c_pass": ([sys.executable, "-c", "pass"], clean_env()),
        "version": ([ACCORD, "--version"], clean_env()),
        "config_get_http": ([ACCORD, "config", "get", PATH], clean_env(ACCORD_ADDR=addr, ACCORD_TOKEN=token)),
        "config_get_sqlite": ([ACCORD, "config", "get", PATH], clean_env(ACCORD_DB_URL=db_url)),
    }
    return {label: (args, env if label == "python_c_pass" else env | extra) for label, (args, env) in todo.items()}


def with_compare(
    todo: dict[str, tuple[list[str], dict[str, str]]], compare: str | None
) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Each accord command once more as ``<label>@compare``, importing accord from ``compare``."""
    if not compare:
        return todo
    more = {f"{label}@compare": (args, env | {"PYTHONPATH": compare}) for label, (args, env) in todo.items()}
    return todo | {label: entry for label, entry in more.items() if not label.startswith("python_c_pass")}


def measure(todo: dict[str, tuple[list[str], dict[str, str]]], runs: int, warmup: int, cwd: Path) -> dict[str, Any]:
    times: dict[str, list[float]] = {label: [] for label in todo}
    cpu: dict[str, list[float]] = {label: [] for label in todo}
    for round_no in range(-warmup, runs):
        for label, (args, env) in todo.items():
            elapsed, used = timed(args, env, cwd)
            if round_no >= 0:
                times[label].append(elapsed)
                cpu[label].append(used)
        note(f"round {round_no + 1}/{runs}" if round_no >= 0 else "warm-up")
    return {
        label: {**summary(values), "cpu": summary(cpu[label]), "samples": [round(v, 4) for v in values]}
        for label, values in times.items()
    }


def verdict(figures: dict[str, Any]) -> dict[str, Any]:
    base = figures["python_c_pass"]["median"]
    ratios = {label: round(f["median"] / base, 1) for label, f in figures.items() if label != "python_c_pass"}
    targets = {
        label: {"target_s": target, "median_s": figures[label]["median"], "met": figures[label]["median"] <= target}
        for label, target in TARGETS_S.items()
    }
    return {"ratio_to_python_c_pass": ratios, "targets": targets}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10, help="timed rounds; each round runs every command once")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first (page cache, .pyc files)")
    p.add_argument(
        "--pythonpath",
        help="run the accord commands on the source tree at this path (e.g. an older commit's src/); the server "
        "always runs this checkout",
    )
    p.add_argument("--compare", help="also run every accord command on this source tree, in the same rounds")
    opts = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="accord-bench-cli-") as tmp:
        workdir = Path(tmp)
        db_url = f"sqlite:///{workdir / 'accord.db'}"
        asyncio.run(prepare(db_url))
        proc, addr, token = start_server(workdir, db_url)
        try:
            todo = with_compare(commands(addr, token, db_url, opts.pythonpath), opts.compare)
            figures = measure(todo, opts.runs, opts.warmup, workdir)
        finally:
            proc.terminate()
            proc.wait(15)
    report = {"benchmark": "cli_startup", "unit": "seconds", "runs": opts.runs, "machine": machine()}
    report["accord_source"] = opts.pythonpath or "this checkout"
    report["compare_source"] = opts.compare
    report |= {"figures": figures, **verdict(figures)}
    lines = [
        f"{label:>26}: median {f['median']:.3f} s, p90 {f['p90']:.3f} s, p99 {f['p99']:.3f} s;"
        f" cpu median {f['cpu']['median']:.3f} s"
        for label, f in figures.items()
    ]
    lines += [
        f"target {label} <= {t['target_s']} s: {'met' if t['met'] else 'NOT met'}"
        for label, t in report["targets"].items()
    ]
    emit(report, lines)


if __name__ == "__main__":
    main()
