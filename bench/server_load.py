"""HTTP load on `accord serve --workers 2` (PostgreSQL + Redis): GET and PUT /api/config/{path} with wrk.

One command starts everything: a scratch database, an empty Redis DB, an application that
declares the settings, ``accord serve --workers N --log-level warning --no-access-log`` on a free
port (its management token read from its stdout), and a comparison server: a bare Starlette route
and a bare FastAPI route, each sending the same JSON bytes as the accord GET, under the same
uvicorn (uvloop, httptools) with the same workers. Each run measures, back to back so they share
the machine's state: bare Starlette, bare FastAPI, /healthz (FastAPI plus accord's middleware,
no token, no store), GET, PUT, and ``pg_row_commit`` — concurrent one-row UPDATEs in autocommit
through bare asyncpg, the ceiling of any write path whose transactions queue on one row with
synchronous commit, as the store's revision row does. wrk is a closed-loop load generator that
runs on the same cores as the servers. Figures per endpoint: requests/s, latency percentiles
(wrk's histogram), and CPU time per request of the server workers, of this database's
PostgreSQL backends and of Redis (from /proc and INFO), far less sensitive to other load than
requests/s on a shared machine."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

import accord
from _common import BenchError, Services, emit, machine, note, parser, services
from accord import Setting, SettingsGroup

BENCH_DIR = Path(__file__).resolve().parent
WRK_DIR = BENCH_DIR / "wrk"
ENDPOINTS = ("bare_starlette", "bare_fastapi", "healthz", "get", "kv_get", "put", "pg_row_commit")
KV_KEY = "bench/embedding/model"  # GET /v1/kv/<key>: the Consul API read beside /api/config's
TARGETS = {"get": 5000.0, "put": 500.0}
GET_PATH, PUT_PATH = "benchsrv.model", "benchsrv.batch_size"
BODY_ENV = "ACCORD_BENCH_BARE_BODY"
TOKEN = re.compile(r"\bacc_[A-Za-z0-9_\-]{20,}")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PARTS_USED = {"put": ("workers", "postgres", "redis", "wrk")}  # CPU that serves the endpoint; others: workers + wrk
SERVER_PACKAGES = ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "pydantic", "prometheus-client")


class BenchServer(SettingsGroup, category="benchsrv"):
    model: str = Setting("BAAI/bge-m3", description="Embedding model served to every instance")
    batch_size: int = Setting(2048, ge=1, description="Items per embedding request")


# ----- the comparison server (imported by uvicorn's workers: `server_load:bare_apps`) ---------------


def bare_apps() -> Callable[..., Awaitable[None]]:
    """/starlette: a bare Starlette route; anything else: a bare FastAPI route. Both send the same bytes."""
    from fastapi import FastAPI
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    body = os.environ.get(BODY_ENV, "{}").encode()

    async def starlette_constant(_request: Any) -> Response:
        return Response(body, media_type="application/json")

    async def fastapi_constant() -> Response:  # no parameters: FastAPI would take one for a query parameter
        return Response(body, media_type="application/json")

    starlette_app = Starlette(routes=[Route("/starlette", starlette_constant)])
    fastapi_app = FastAPI()
    fastapi_app.add_api_route("/fastapi", fastapi_constant, methods=["GET"])

    async def dispatch(scope: dict[str, Any], receive: Any, send: Any) -> None:
        app = starlette_app if scope.get("path") == "/starlette" else fastapi_app
        await app(scope, receive, send)

    return dispatch


# ----- server processes -----------------------------------------------------------------------------


class ServerProcess:
    """A uvicorn supervisor and its workers, in their own process group; stdout is kept for the token."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name, self.argv, self.env, self.workdir = name, argv, env, workdir
        self.stdout: list[str] = []
        self.token_seen = threading.Event()
        self.proc: subprocess.Popen[str] | None = None
        self.log = workdir / f"{name}.stderr.log"

    def start(self) -> None:
        with self.log.open("w") as err:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=self.workdir, stdout=subprocess.PIPE, stderr=err, text=True,
                start_new_session=True,
            )  # fmt: skip
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout.append(line)
            if TOKEN.search(line):
                self.token_seen.set()

    def token(self, within_s: float) -> str:
        if not self.token_seen.wait(within_s):
            raise BenchError(f"{self.name} printed no token within {within_s:g}s; stderr: {self.stderr_tail()}")
        found = TOKEN.search("".join(self.stdout))
        assert found is not None
        return found.group(0)

    def workers(self) -> list[int]:
        """Worker pids: the supervisor's children started through multiprocessing's spawn."""
        assert self.proc is not None
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                cmdline = (stat.parent / "cmdline").read_bytes()
                if int(fields[1]) == self.proc.pid and b"spawn_main" in cmdline:
                    found.append(int(stat.parent.name))
        return sorted(found)

    def stderr_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text().splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # uvicorn's supervisor shuts its workers down
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # our own session: the supervisor's pid is its group id
            self.proc.wait(timeout=10)


def cpu_seconds(pids: list[int]) -> list[float]:
    """user + system CPU time of each process so far (0 for a process that is gone)."""
    times = []
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            times.append((int(fields[11]) + int(fields[12])) / CLK_TCK)
        except (OSError, IndexError, ValueError):
            times.append(0.0)
    return times


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def _kv_put(url: str, value: bytes, token: str) -> bytes:
    request = urllib.request.Request(url, data=value, method="PUT", headers={"X-Consul-Token": token})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return bytes(answer.read()).strip()


async def wait_ready(url: str, server: ServerProcess, within_s: float = 60.0) -> None:
    """Until ``url`` answered 200 ten times in a row (on fresh connections, so both workers are likely up)."""
    deadline, streak = time.monotonic() + within_s, 0
    while streak < 10:
        if server.proc is not None and server.proc.poll() is not None:
            raise BenchError(f"{server.name} exited with {server.proc.returncode}: {server.stderr_tail()}")
        if time.monotonic() > deadline:
            raise BenchError(f"{server.name} not ready at {url} within {within_s:g}s: {server.stderr_tail()}")
        status, _ = await asyncio.to_thread(http_get, url)
        streak = streak + 1 if status == 200 else 0
        await asyncio.sleep(0.05 if status == 200 else 0.2)


# ----- load --------------------------------------------------------------------------------------------


async def wrk(url: str, script: str, args: argparse.Namespace, connections: int, duration: float, token: str) -> Any:
    argv = [
        args.wrk, f"-t{min(args.threads, connections)}", f"-c{connections}", f"-d{duration:g}s", "--latency",
        "--timeout", "10s", "-s", script, "-H", f"Authorization: Bearer {token}", url,
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(*argv, cwd=WRK_DIR, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    text = out.decode()
    for line in text.splitlines():
        if line.startswith("WRK_JSON "):
            shown = [*argv[:-3], "-H", "'Authorization: Bearer …'", url]
            return json.loads(line[len("WRK_JSON ") :]) | {"argv": " ".join(shown)}
    raise BenchError(f"wrk printed no figures (exit {proc.returncode}):\n{text}")


async def row_commits(dsn: str, connections: int, duration: float) -> dict[str, Any]:
    """Concurrent single-row UPDATEs in autocommit: each waits for the previous commit's flush."""
    conns = [await asyncpg.connect(dsn) for _ in range(connections)]
    latencies: list[float] = []
    try:
        end = time.monotonic() + duration

        async def loop(conn: asyncpg.Connection) -> None:
            while (start := time.monotonic()) < end:
                await conn.execute("UPDATE bench_row SET value = value + 1 WHERE id = 1")
                latencies.append(time.monotonic() - start)

        began = time.monotonic()
        await asyncio.gather(*(loop(conn) for conn in conns))
        elapsed = time.monotonic() - began
    finally:
        for conn in conns:
            await conn.close()
    ordered = sorted(latencies)

    def pct(q: float) -> int:
        return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1e6) if ordered else 0

    return {
        "requests": len(latencies),
        "duration_us": round(elapsed * 1e6),
        "errors": {},
        "latency_us": {"p50": pct(50), "p75": pct(75), "p90": pct(90), "p99": pct(99), "p999": pct(99.9)},
    }


# ----- the benchmark -----------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, found: Services) -> None:
        self.args, self.found = args, found
        self.samples: dict[str, list[dict[str, Any]]] = {name: [] for name in args.endpoints}
        self.accord: ServerProcess | None = None
        self.bare: ServerProcess | None = None
        self.token = ""
        self.urls: dict[str, str] = {}
        self.facts: dict[str, Any] = {}
        self.admin: asyncpg.Connection | None = None
        self.redis: aioredis.Redis | None = None

    async def prepare(self) -> None:
        """Declare the settings as an application would, and store the value GET reads."""
        async with await accord.connect(
            self.found.db_url, self.found.redis_url, groups=[BenchServer], use_env=False
        ) as cfg:
            await cfg.set(GET_PATH, "BAAI/bge-large-en-v1.5")
        self.admin = admin = await asyncpg.connect(self.dsn)
        self.redis = aioredis.Redis.from_url(self.found.redis_url)
        await admin.execute("CREATE TABLE bench_row (id int PRIMARY KEY, value bigint NOT NULL)")
        await admin.execute("INSERT INTO bench_row VALUES (1, 0)")
        self.facts["synchronous_commit"] = await admin.fetchval("SHOW synchronous_commit")
        self.facts["autovacuum"] = await admin.fetchval("SHOW autovacuum")
        self.facts["store_write_path"] = (
            "accord_put_groups() function, concurrent writes of a worker coalesced"
            if await admin.fetchval("SELECT count(*) FROM pg_proc WHERE proname = 'accord_put_groups'")
            else "statements from SQLAlchemy"
        )

    async def aclose(self) -> None:
        if self.admin is not None:
            await self.admin.close()
        if self.redis is not None:
            await self.redis.aclose()

    async def stack_cpu(self, workers: list[int]) -> dict[str, Any]:
        """CPU seconds so far: server workers, this database's PostgreSQL backends, Redis, finished children (wrk)."""
        assert self.admin is not None and self.redis is not None
        query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        backends = [row["pid"] for row in await self.admin.fetch(query)]
        info = await self.redis.info("cpu")
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "workers": cpu_seconds(workers),
            "postgres": dict(zip(backends, cpu_seconds(backends), strict=True)),
            "redis": float(info["used_cpu_sys"]) + float(info["used_cpu_user"]),
            "wrk": children.ru_utime + children.ru_stime,
        }

    @property
    def dsn(self) -> str:
        return make_url(self.found.db_url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def start_servers(self) -> None:
        env = dict(os.environ)
        env.setdefault("ACCORD_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
        env |= {"ACCORD_DB_URL": self.found.db_url, "ACCORD_REDIS_URL": self.found.redis_url}
        port = free_port()
        serve = [self.args.accord, "serve", "--host", "127.0.0.1", "--port", str(port)]
        serve += ["--workers", str(self.args.workers), "--log-level", "warning", "--no-access-log"]
        self.accord = ServerProcess("accord", serve, env, self.found.workdir)
        self.accord.start()
        self.token = await asyncio.to_thread(self.accord.token, 90.0)
        base = f"http://127.0.0.1:{port}"
        await wait_ready(f"{base}/readyz", self.accord)
        self.urls |= {"healthz": f"{base}/healthz", "get": f"{base}/api/config/{GET_PATH}"}
        self.urls["put"] = f"{base}/api/config/{PUT_PATH}"
        status, body = http_get(self.urls["get"], self.token)
        if status != 200:
            raise BenchError(f"GET {self.urls['get']} answered {status}: {body[:300]!r}")
        self.facts["get_body_bytes"] = len(body)
        self.urls["kv_get"] = f"{base}/v1/kv/{KV_KEY}"
        if await asyncio.to_thread(_kv_put, self.urls["kv_get"], b"BAAI/bge-large-en-v1.5", self.token) != b"true":
            raise BenchError(f"PUT {self.urls['kv_get']} did not answer true")
        bare_port = free_port()
        uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "server_load:bare_apps", "--app-dir", str(BENCH_DIR)]
        uvicorn += ["--host", "127.0.0.1", "--port", str(bare_port), "--workers", str(self.args.workers)]
        bare_env = env | {BODY_ENV: body.decode()}
        self.bare = ServerProcess(
            "bare", [*uvicorn, "--log-level", "warning", "--no-access-log"], bare_env, self.found.workdir
        )
        self.bare.start()
        bare = f"http://127.0.0.1:{bare_port}"
        await wait_ready(f"{bare}/starlette", self.bare)
        self.urls |= {"bare_starlette": f"{bare}/starlette", "bare_fastapi": f"{bare}/fastapi"}
        self.facts["worker_pids"] = {"accord": self.accord.workers(), "bare": self.bare.workers()}

    def stop_servers(self) -> None:
        for server in (self.bare, self.accord):
            if server is not None:
                server.stop()

    async def measure(self, name: str, run: int) -> None:
        args = self.args
        if name == "pg_row_commit":
            await row_commits(self.dsn, args.put_connections, min(args.warmup, 2.0))
            sample = await row_commits(self.dsn, args.put_connections, args.duration)
        else:
            server = self.bare if name.startswith("bare") else self.accord
            assert server is not None
            script = "put.lua" if name == "put" else "get.lua"
            connections = args.put_connections if name == "put" else args.connections
            if args.analyze and self.admin is not None:  # autovacuum's analyze (see --help); re-plans statements
                await self.admin.execute("ANALYZE")
            if args.warmup > 0:
                await wrk(self.urls[name], script, args, connections, args.warmup, self.token)
            pids = server.workers()
            before = await self.stack_cpu(pids)
            sample = await wrk(self.urls[name], script, args, connections, args.duration, self.token)
            sample["cpu_s"] = _cpu_spent(before, await self.stack_cpu(pids))
        sample["loadavg_1m_at_start"] = round(os.getloadavg()[0], 2)
        self.samples[name].append(sample)
        note(f"run {run + 1}/{args.runs} {name:>15}: {_rate(sample):8.0f} req/s  p99 {_ms(sample, 'p99'):7.1f} ms")

    async def put_version(self) -> int:
        status, body = await asyncio.to_thread(http_get, self.urls["put"], self.token)
        return int(json.loads(body)["version"]) if status == 200 else -1


def _cpu_spent(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    postgres = sum(cpu - before["postgres"].get(pid, 0.0) for pid, cpu in after["postgres"].items())
    return {
        "workers": [round(b - a, 3) for a, b in zip(before["workers"], after["workers"], strict=True)],
        "postgres": round(postgres, 3),
        "redis": round(after["redis"] - before["redis"], 3),
        "wrk": round(after["wrk"] - before["wrk"], 3),
    }


def _rate(sample: dict[str, Any]) -> float:
    return sample["requests"] / (sample["duration_us"] / 1e6) if sample["duration_us"] else 0.0


def _total(value: float | list[float]) -> float:
    return sum(value) if isinstance(value, list) else value


def _per_request(cpu_s: list[float], samples: list[dict[str, Any]]) -> dict[str, Any]:
    runs = [round(1e6 * cpu / max(1, s["requests"]), 1) for cpu, s in zip(cpu_s, samples, strict=True)]
    return {"runs": runs, "median": statistics.median(runs)}


def _ms(sample: dict[str, Any], pct: str) -> float:
    return float(sample["latency_us"][pct]) / 1000


def figures(name: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-run figures and the median across runs."""
    rates = [round(_rate(s), 1) for s in samples]
    out: dict[str, Any] = {
        "requests_per_s": {"runs": rates, "median": statistics.median(rates), "min": min(rates), "max": max(rates)},
        "latency_ms": {
            pct: {"runs": [_ms(s, pct) for s in samples], "median": statistics.median(_ms(s, pct) for s in samples)}
            for pct in ("p50", "p90", "p99", "p999")
        },
        "non_2xx_or_socket_errors": sum(sum(s["errors"].values()) for s in samples),
    }
    if "cpu_s" in samples[0]:
        out["cpu_us_per_request"] = cpu = {
            part: _per_request([_total(s["cpu_s"][part]) for s in samples], samples)
            for part in ("workers", "postgres", "redis", "wrk")
        }
        # What the machine could serve if the processes serving the endpoint had every core (other tenants,
        # kernel work charged to no process and scheduling ignored): an estimate, not a measurement.
        # PostgreSQL and Redis count only where used: they are shared servers, busy with others too.
        total = sum(cpu[part]["median"] for part in PARTS_USED.get(name, ("workers", "wrk")))
        out["cpu_bound_estimate_requests_per_s"] = round(len(os.sched_getaffinity(0)) * 1e6 / total) if total else None
        out["worker_cpu_s_per_run"] = [s["cpu_s"]["workers"] for s in samples]
    out["loadavg_1m_at_start"] = [s["loadavg_1m_at_start"] for s in samples]
    out["wrk"] = samples[0].get("argv", "asyncpg, in the benchmark process")
    return out


async def main(args: argparse.Namespace) -> None:
    if not shutil.which(args.wrk):
        raise BenchError(f"wrk not found at {args.wrk!r} (apt-get install wrk, or pass --wrk)")
    async with services(args) as found:
        bench = Bench(args, found)
        try:
            await bench.prepare()
            await bench.start_servers()
            version_before = await bench.put_version()
            for run in range(args.runs):
                for name in args.endpoints:
                    await bench.measure(name, run)
            written = await bench.put_version() - version_before
        finally:
            bench.stop_servers()
            await bench.aclose()
        report(args, found, bench, written)


def report(args: argparse.Namespace, found: Services, bench: Bench, written: int) -> None:
    results = {name: figures(name, samples) for name, samples in bench.samples.items() if samples}
    lines = [
        f"{'endpoint':>15}  {'req/s':>7}  {'p50 ms':>7}  {'p99 ms':>7}  {'CPU µs/req':>22}  {'est.':>6}  runs (req/s)"
    ]
    for name, fig in results.items():
        target = TARGETS.get(name)
        if target is not None:
            fig["target_requests_per_s"] = target
            fig["target_met"] = fig["requests_per_s"]["median"] >= target
        lines.append(_summary(name, fig))
        if fig["non_2xx_or_socket_errors"]:
            lines.append(f"{'':>15}  WARNING: {fig['non_2xx_or_socket_errors']} non-2xx answers or socket errors")
    lines.append("CPU µs/req: server workers + PostgreSQL backends + Redis + wrk (PostgreSQL and Redis are shared:")
    lines.append("  they count in est. for PUT only); est.: req/s if the processes serving the endpoint had every core")
    if "put" in results:
        counted = sum(s["requests"] for s in bench.samples["put"])
        results["put"]["versions_written_incl_warmup"] = written
        lines.append(f"PUT: {written} new versions stored (wrk counted {counted} answers, warm-ups excluded)")
    out = {
        "benchmark": "server_load",
        "unit": "requests/s; latency in ms (wrk, closed loop); CPU in µs per request (workers, postgres, redis, wrk)",
        "command": " ".join([os.path.relpath(sys.executable), *sys.argv]),
        "machine": machine(found) | _tools(args.wrk),
        "parameters": {k: v for k, v in vars(args).items() if k not in ("db_url", "redis_url")},
        "server": bench.facts,
        "results": results,
    }
    emit(out, lines)


def _summary(name: str, fig: dict[str, Any]) -> str:
    rate, latency = fig["requests_per_s"], fig["latency_ms"]
    cpu = {part: round(f["median"]) for part, f in fig.get("cpu_us_per_request", {}).items()}
    cpu_text = " + ".join(str(cpu[part]) for part in ("workers", "postgres", "redis", "wrk")) if cpu else ""
    estimate = fig.get("cpu_bound_estimate_requests_per_s") or ""
    target = fig.get("target_requests_per_s")
    verdict = "" if target is None else f"   target >= {target:.0f}/s: {'met' if fig['target_met'] else 'MISSED'}"
    return (
        f"{name:>15}  {rate['median']:7.0f}  {latency['p50']['median']:7.2f}  {latency['p99']['median']:7.2f}  "
        f"{cpu_text:>22}  {estimate:>6}  {' / '.join(f'{r:.0f}' for r in rate['runs'])}{verdict}"
    )


def _tools(wrk_path: str) -> dict[str, Any]:
    packages = {}
    for name in SERVER_PACKAGES:
        with contextlib.suppress(PackageNotFoundError):
            packages[name] = version(name)
    wrk_version = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError, IndexError):
        wrk_version = subprocess.run([wrk_path, "--version"], capture_output=True, text=True, timeout=5).stdout
        wrk_version = wrk_version.splitlines()[0].strip()
    return {"wrk": wrk_version, "server_packages": packages}


def cli() -> argparse.Namespace:
    p = parser(__doc__.splitlines()[0], db_name="accord_bench_server")
    p.set_defaults(runs=3, redis_url="redis://127.0.0.1:6379/13")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of load per endpoint per run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load before each measurement")
    p.add_argument("--connections", type=int, default=32, help="wrk connections for the GET-type endpoints")
    p.add_argument(
        "--put-connections", type=int, default=16, help="wrk connections for PUT (and asyncpg ones for pg_row_commit)"
    )
    p.add_argument("--threads", type=int, default=2, help="wrk threads (they share the cores with the servers)")
    p.add_argument("--workers", type=int, default=2, help="server worker processes (accord serve --workers)")
    p.add_argument("--endpoints", nargs="+", choices=ENDPOINTS, default=list(ENDPOINTS), help="what to measure")
    p.add_argument(
        "--analyze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ANALYZE the scratch database before each measurement, as autovacuum would (a server running with "
        "autovacuum=off otherwise keeps a plan that scans all of kv_history on every mirror resync)",
    )
    p.add_argument("--wrk", default="wrk", help="the wrk binary")
    p.add_argument(
        "--accord", default=str(Path(sys.executable).with_name("accord")), help="the accord command (console script)"
    )
    return p.parse_args()


if __name__ == "__main__":
    try:
        asyncio.run(main(cli()))
    except BenchError as exc:
        sys.exit(f"server_load: {exc}")
