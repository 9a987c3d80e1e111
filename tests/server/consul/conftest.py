"""A real `accord serve` for the Consul API tests, and real py-consul clients on it."""

from collections.abc import Iterator
from pathlib import Path

import consul
import pytest

from tests.harness import AccordServer, running


@pytest.fixture(scope="module")
def kv_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AccordServer]:
    """One server on its own SQLite file for a module (tests use distinct keys)."""
    root: Path = tmp_path_factory.mktemp("consul-kv")
    server = AccordServer(f"sqlite+aiosqlite:///{root}/accord.db", "", root / "server", expect_token=True)
    with running(server):
        yield server


def client_for(server: AccordServer, token: str | None = None) -> consul.Consul:
    return consul.Consul(host="127.0.0.1", port=server.port, token=token)


@pytest.fixture(scope="module")
def admin(kv_server: AccordServer) -> consul.Consul:
    """py-consul with the management token the server printed."""
    assert kv_server.token
    return client_for(kv_server, kv_server.token)
