"""The suite's root: the harness plugin, the environment every test and child process starts from, Hypothesis.

Hypothesis keeps its example database in memory: a database in the working tree (its default,
.hypothesis/) makes a run depend on earlier runs' leftovers and a fresh CI clone behave differently
from a developer's checkout. A failure stays reproducible from the blob Hypothesis prints with it.
"""

import base64
import faulthandler
import os
import sys
from collections.abc import Generator, Iterator

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


# pytest-timeout's signal method fails a test stuck in Python code after `timeout` seconds, but a test stuck
# inside C (a sqlite3 busy loop, a blocking libpq call) never returns to the interpreter to take the signal.
# This watchdog runs on its own C thread: past HARD_LIMIT it prints every thread's stack and ends the run, so
# a hang costs CI minutes and names its place instead of silently using up the whole job.
HARD_LIMIT = 300.0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    sys.stderr.flush()
    faulthandler.dump_traceback_later(HARD_LIMIT, exit=True)
    try:
        return (yield)
    finally:
        faulthandler.cancel_dump_traceback_later()


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
