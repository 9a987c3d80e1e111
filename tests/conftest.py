"""The suite's root: the harness plugin, the environment every test and child process starts from, Hypothesis.

Hypothesis keeps its example database in memory: a database in the working tree (its default,
.hypothesis/) makes a run depend on earlier runs' leftovers and a fresh CI clone behave differently
from a developer's checkout. A failure stays reproducible from the blob Hypothesis prints with it.
"""

import base64
import os
from collections.abc import Iterator

import consul
import pytest
from hypothesis import settings
from hypothesis.database import InMemoryExampleDatabase

pytest_plugins = ["tests.harness.plugin"]

# Every instance of a fleet shares one master key; so do the processes a test starts (they inherit it).
os.environ.setdefault("ACCORD_MASTER_KEY", base64.b64encode(b"accord-tests-master-key-32-bytes").decode())
for _name in (
    "ACCORD_DB_URL", "ACCORD_REDIS_URL", "ACCORD_ENV_OVERRIDE", "ACCORD_SNAPSHOT_FILE", "ACCORD_ENV", "ACCORD_ADDR",
    "ACCORD_TOKEN", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_ADDR",
):  # fmt: skip
    os.environ.pop(_name, None)

settings.register_profile("accord", database=InMemoryExampleDatabase(), print_blob=True)
settings.load_profile("accord")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """The order seed again at the end, where `-q` runs and CI logs show it next to the failures."""
    seed = getattr(config.option, "randomly_seed", None)
    if config.pluginmanager.has_plugin("randomly") and isinstance(seed, int):
        terminalreporter.write_line(f"tests ran in random order: rerun with --randomly-seed={seed}")


@pytest.fixture(autouse=True)
def _close_consul_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close the keep-alive sockets of every py-consul client a test made (a closed one still works: its
    pools are rebuilt on use), so no socket is left for the garbage collector to warn about later."""
    made: list[consul.Consul] = []
    original = consul.Consul.__init__

    def recording(self: consul.Consul, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        made.append(self)

    monkeypatch.setattr(consul.Consul, "__init__", recording)
    yield
    for client in made:
        client.http.close()
