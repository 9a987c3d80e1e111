"""Processes that serve HTTP and say they are up on GET /healthz: accord serve, the proxy, the echo model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import httpx

from tests.harness.process import ManagedProcess


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any ACCORD_* setting but the shared master key, plus ``extra``.

    A child must see only what its test gives it: an ACCORD_DB_URL or ACCORD_REDIS_URL left in a
    developer's shell would otherwise point it at another store.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_") or k == "ACCORD_MASTER_KEY"}
    return env | (extra or {})


class HttpProcess(ManagedProcess):
    """A child that runs ``command`` with ``env`` and is healthy once /healthz answers 200."""

    name: ClassVar[str] = "http"
    start_timeout: ClassVar[float] = 60.0

    def __init__(
        self, workdir: Path, command: list[str], env: dict[str, str], *, port: int | None = None, name: str = ""
    ) -> None:
        super().__init__(workdir, port)
        self._command = command
        self._env = env
        self.label = name or self.name

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stdout_path(self) -> Path:
        return self.workdir / f"{self.label}.log"

    def command(self) -> list[str]:
        return self._command

    def environment(self) -> dict[str, str]:
        return self._env

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    def get_json(self, path: str) -> Any:
        answer = httpx.get(f"{self.url}{path}", timeout=10)
        answer.raise_for_status()
        return answer.json()


class EchoUpstream(HttpProcess):
    """The echo "model" of the proxy tests (``script PORT``): it answers with what it received and records it."""

    name: ClassVar[str] = "upstream"

    def __init__(
        self, workdir: Path, script: Path, python: str, *, seed: int | None = None, port: int | None = None
    ) -> None:
        super().__init__(workdir, [], child_env(), port=port)
        self._command = [python, str(script), str(self.port), *([] if seed is None else [str(seed)])]

    def received(self) -> list[dict[str, Any]]:
        """Headers and body of every request it got, oldest first."""
        records: list[dict[str, Any]] = self.get_json("/_received")
        return records
