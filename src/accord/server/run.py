"""Running the server under uvicorn, one process or several, with the URLs handed to each worker.

Workers are separate interpreters (uvicorn spawns them), so they must learn the database and Redis
URLs from their parent. They get them inside a picklable app factory, not through ``os.environ``:
the parent's environment stays as its user set it, and nothing else reads the URLs from there.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

    from accord.events.consumer import ConsumerOptions

STARTUP_FAILURE = 3  # uvicorn's exit code when the app did not start
MAX_DEFAULT_WORKERS = 8  # each worker holds its own replica and database pool; more is a choice, not a default
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def default_workers(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The CPUs this process may really use, at most MAX_DEFAULT_WORKERS: ``--workers``' default.

    ``os.cpu_count()`` is the node's count; a Kubernetes pod limited to 2 CPUs on a 64-core node
    would start 64 workers. The cgroup v2 quota (``cpu.max``: ``<quota> <period>`` or ``max``) and
    the scheduler affinity both bound it; the quota rounds up (1.5 CPUs: 2 workers).
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    with contextlib.suppress(OSError, ValueError, ZeroDivisionError):
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            usable = min(usable, max(1, math.ceil(int(quota) / int(period))))
    return max(1, min(usable, MAX_DEFAULT_WORKERS))


@dataclass(frozen=True)
class AppFactory:
    """What each worker builds its app from; ``None`` falls back to ACCORD_DB_URL / ACCORD_REDIS_URL."""

    db_url: str | None = None
    redis_url: str | None = None
    metrics_dir: str | None = None  # set under --workers N: the workers' shared metrics files
    listen_addr: str | None = None  # host:port the server listens on (set by serve): the replica's default address
    events: ConsumerOptions | None = None  # serve --events: run an events consumer in each process

    def __call__(self) -> FastAPI:
        from accord.server.app import create_app
        from accord.server.metrics import share_metrics

        if self.metrics_dir is not None:
            share_metrics(self.metrics_dir)
        app = create_app(
            db_url=self.db_url, redis_url=self.redis_url, metrics_dir=self.metrics_dir, listen_addr=self.listen_addr
        )
        app.state.redis_url = self.redis_url  # None: ACCORD_REDIS_URL, as the server's own connect() does
        if self.events is not None:
            from accord.events.serving import attach_consumer, per_process

            options = self.events if self.metrics_dir is None else per_process(self.events)
            attach_consumer(
                app, self.db_url, self.redis_url, options, register=lambda c: app.state.accord.metrics.watch(c)
            )
        return app


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8500
    workers: int = 1
    log_level: str = "info"
    access_log: bool = True


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging, with accord's own loggers at the server's level."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["accord"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def serve(factory: AppFactory, options: ServeOptions) -> None:
    """What ``uvicorn.run`` does, minus its rule that several workers need an import string."""
    import uvicorn

    from accord.server.direct_body import protocol_class

    if factory.listen_addr is None:
        factory = dataclasses.replace(factory, listen_addr=f"{options.host}:{options.port}")
    config = uvicorn.Config(
        factory,
        factory=True,
        host=options.host,
        port=options.port,
        workers=options.workers,
        log_level=options.log_level,
        log_config=log_config(options.log_level),
        access_log=options.access_log,
        proxy_headers=False,
        http=protocol_class(),  # uvicorn's httptools protocol; the change stream writes events directly
    )
    if config.workers > 1:
        _run_workers(factory, config)
        return
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def _run_workers(factory: AppFactory, config: uvicorn.Config) -> None:
    """Several workers, counting their metrics in files of one directory of this server's own."""
    import shutil
    import tempfile

    from uvicorn.supervisors import Multiprocess

    metrics_dir = tempfile.mkdtemp(prefix="accord-metrics-")
    config.app = dataclasses.replace(factory, metrics_dir=metrics_dir)
    try:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
