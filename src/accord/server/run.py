"""Running the server under uvicorn, one process or several, with the URLs handed to each worker.

Workers are separate interpreters (uvicorn spawns them), so they must learn the database and Redis
URLs from their parent. They get them inside a picklable app factory, not through ``os.environ``:
the parent's environment stays as its user set it, and nothing else reads the URLs from there.
"""

from __future__ import annotations

import contextlib
import copy
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

STARTUP_FAILURE = 3  # uvicorn's exit code when the app did not start


@dataclass(frozen=True)
class AppFactory:
    """What each worker builds its app from; ``None`` falls back to ACCORD_DB_URL / ACCORD_REDIS_URL."""

    db_url: str | None = None
    redis_url: str | None = None

    def __call__(self) -> FastAPI:
        from accord.server.app import create_app

        return create_app(db_url=self.db_url, redis_url=self.redis_url)


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
    from uvicorn.supervisors import Multiprocess

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
    )
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
