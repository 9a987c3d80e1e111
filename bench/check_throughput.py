"""HTTP health checks one checker sustains: accord's ``Prober`` against a local target, beside a bare httpx loop.

The target is a minimal asyncio HTTP server in its own process (it answers ``200 ok`` and closes,
as a check's connection is never kept alive), so the figure is the checker's own cost. ``--concurrency``
probes are in flight at once, as a leader with many checks due together runs them; the comparison
is the same number of plain ``httpx`` GETs with keep-alives off, on the same client settings. The
issue's target is ≥ 1,000 checks/s from one checker.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx

from _common import emit, machine, note
from accord.registry.checks import Prober

TARGET_PER_S = 1000.0
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def _serve(sock: socket.socket) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(ANSWER)
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, sock=sock, backlog=1024)
        await server.serve_forever()

    asyncio.run(main())


async def _probes(url: str, seconds: float, concurrency: int) -> int:
    prober = Prober()
    definition = {"HTTP": url, "Timeout": 10.0}
    done = 0
    end = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < end:
            result = await prober.run("http", definition)
            if result.status != "passing":
                raise RuntimeError(f"probe failed: {result.output}")
            done += 1

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await prober.aclose()
    return done


async def _bare(url: str, seconds: float, concurrency: int) -> int:
    done = 0
    end = time.monotonic() + seconds
    async with httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0)) as client:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < end:
                (await client.get(url)).raise_for_status()
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--seconds", type=float, default=5.0, help="length of each measured run")
    p.add_argument("--concurrency", type=int, default=32, help="probes in flight at once")
    args = p.parse_args()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/health"
    target = multiprocessing.get_context("fork").Process(target=_serve, args=(sock,), daemon=True)
    target.start()
    rates: dict[str, list[float]] = {"accord_prober": [], "bare_httpx": []}
    try:
        await _probes(url, 1.0, args.concurrency)  # warm-up
        for run in range(args.runs):
            for name, measure in (("accord_prober", _probes), ("bare_httpx", _bare)):
                count = await measure(url, args.seconds, args.concurrency)
                rates[name].append(round(count / args.seconds, 1))
            note(f"run {run + 1}/{args.runs}: prober {rates['accord_prober'][-1]}/s, bare {rates['bare_httpx'][-1]}/s")
    finally:
        target.kill()
        target.join()
    figures = {
        name: {"runs": values, "median": statistics.median(values), "min": min(values), "max": max(values)}
        for name, values in rates.items()
    }
    median = figures["accord_prober"]["median"]
    report = {
        "benchmark": "check_throughput",
        "unit": "HTTP checks completed per second by one checker process",
        "target_per_s": TARGET_PER_S,
        "concurrency": args.concurrency,
        "figures": figures,
        "ratio_to_bare_httpx": round(median / figures["bare_httpx"]["median"], 2),
        "target_met": median >= TARGET_PER_S,
        "machine": machine(),
    }
    emit(report, [f"prober {median}/s (bare httpx {figures['bare_httpx']['median']}/s), target {TARGET_PER_S:g}/s"])


if __name__ == "__main__":
    asyncio.run(main())
