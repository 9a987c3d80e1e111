"""Blocking-query wake-up: a KV write to a blocked `GET /v1/kv/<key>?index=N` returning, beside an etcd watch.

Two `accord serve` replicas share one PostgreSQL + Redis. For each sample a blocking GET is
pending (on replica A, or on replica B while the write goes to A), then this process stamps
``time.monotonic_ns()`` and sends the PUT; the figure is the time until the blocked GET's answer
arrives — the write's own round trip included, as a client would see it. etcd 3 (Debian's
etcd-server, fsync on) runs in the same run: a watch stream on its HTTP gateway, a put, the time
until the watch event arrives. Same client library (httpx), same event loop, same machine.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx

from _common import BenchError, emit, machine, note, parser, runs_and_overall, services
from server_load import ServerProcess, free_port, wait_ready

TARGET_P99_MS = 2.0
KEY = "bench/blocking"


async def _accord_samples(writer: httpx.AsyncClient, waiter: httpx.AsyncClient, count: int) -> list[float]:
    first = await writer.put(f"/v1/kv/{KEY}", content=b"0")
    first.raise_for_status()
    index = int((await waiter.get(f"/v1/kv/{KEY}")).headers["X-Consul-Index"])
    samples = []
    for n in range(1, count + 1):
        pending = asyncio.create_task(waiter.get(f"/v1/kv/{KEY}", params={"index": str(index), "wait": "30s"}))
        await asyncio.sleep(0.01 + random.random() * 0.01)  # the GET is parked on the server before the write
        start = time.monotonic_ns()
        await writer.put(f"/v1/kv/{KEY}", content=str(n).encode())
        answer = await pending
        samples.append((time.monotonic_ns() - start) / 1e6)
        new_index = int(answer.headers["X-Consul-Index"])
        if new_index <= index:
            raise BenchError(f"the blocking GET returned without a change (index {new_index} after {index})")
        index = new_index
    return samples


async def _etcd_samples(base: str, count: int) -> list[float]:
    key = base64.b64encode(KEY.encode()).decode()
    events: asyncio.Queue[int] = asyncio.Queue()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def watch() -> None:
            body = {"create_request": {"key": key}}
            async with client.stream("POST", "/v3/watch", json=body, timeout=None) as stream:
                async for line in stream.aiter_lines():
                    if line and json.loads(line).get("result", {}).get("events"):
                        events.put_nowait(time.monotonic_ns())

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.5)
        samples = []
        try:
            for n in range(count):
                await asyncio.sleep(0.01 + random.random() * 0.01)
                start = time.monotonic_ns()
                value = base64.b64encode(str(n).encode()).decode()
                (await client.post("/v3/kv/put", json={"key": key, "value": value})).raise_for_status()
                seen = await asyncio.wait_for(events.get(), 10)
                samples.append((seen - start) / 1e6)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await watcher
    return samples


@contextlib.contextmanager
def _etcd(workdir: Path) -> Iterator[str]:
    binary = shutil.which("etcd")
    if binary is None:
        raise BenchError("etcd is not installed: apt-get install etcd-server")
    client_port, peer_port = free_port(), free_port()
    proc = subprocess.Popen(
        [binary, "--data-dir", str(workdir / "etcd"), "--listen-client-urls", f"http://127.0.0.1:{client_port}",
         "--advertise-client-urls", f"http://127.0.0.1:{client_port}",
         "--listen-peer-urls", f"http://127.0.0.1:{peer_port}"],
        stdout=subprocess.DEVNULL, stderr=(workdir / "etcd.log").open("w"),
    )  # fmt: skip
    base = f"http://127.0.0.1:{client_port}"
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.05)
        else:
            raise BenchError(f"etcd did not start; see {workdir / 'etcd.log'}")
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


async def main() -> None:
    p = parser(__doc__ or "", db_name="accord_bench_blocking")
    p.add_argument("--samples", type=int, default=200, help="wake-ups per run and mode")
    args = p.parse_args()
    async with services(args) as found:
        workdir = Path(tempfile.mkdtemp(prefix="accord-bench-blocking-"))
        env = {"ACCORD_DB_URL": found.db_url, "ACCORD_REDIS_URL": found.redis_url, "PATH": "/usr/bin:/bin"}
        accord = str(Path(sys.executable).parent / "accord")
        ports = [free_port(), free_port()]
        servers = [
            ServerProcess(f"replica-{i}", [accord, "serve", "--port", str(port), "--log-level", "warning",
                                           "--no-access-log"], env, workdir)
            for i, port in enumerate(ports)
        ]  # fmt: skip
        servers[0].start()
        token = servers[0].token(60)
        await wait_ready(f"http://127.0.0.1:{ports[0]}/healthz", servers[0])
        servers[1].start()
        await wait_ready(f"http://127.0.0.1:{ports[1]}/healthz", servers[1])
        try:
            headers = {"X-Consul-Token": token}
            a = httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}", headers=headers, timeout=60)
            b = httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[1]}", headers=headers, timeout=60)
            modes: dict[str, list[list[float]]] = {"accord_same_replica": [], "accord_other_replica": [], "etcd": []}
            with _etcd(workdir) as etcd_base:
                async with a, b:
                    for run in range(args.runs):
                        note(f"run {run + 1}/{args.runs}")
                        modes["accord_same_replica"].append(await _accord_samples(a, a, args.samples))
                        modes["accord_other_replica"].append(await _accord_samples(a, b, args.samples))
                        modes["etcd"].append(await _etcd_samples(etcd_base, args.samples))
        finally:
            for server in servers:
                server.stop()
    figures = {mode: runs_and_overall(per_run) for mode, per_run in modes.items()}
    etcd_p99 = figures["etcd"]["median_of_run_p99s"]
    report = {
        "benchmark": "consul_blocking",
        "unit": "ms from sending the PUT to the blocked reader's answer",
        "target_p99_ms": TARGET_P99_MS,
        "figures": figures,
        "ratio_p99_to_etcd": {
            mode: round(figures[mode]["median_of_run_p99s"] / etcd_p99, 2) for mode in figures if mode != "etcd"
        },
        "machine": machine(found),
    }
    emit(
        report,
        [
            f"{mode}: p50 {f['median_of_run_medians']} ms, p99 {f['median_of_run_p99s']} ms"
            for mode, f in figures.items()
        ],
    )


if __name__ == "__main__":
    asyncio.run(main())
