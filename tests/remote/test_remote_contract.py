"""The LiveConfig contract (tests/config/test_live_contract.py) on a fourth backend: remote, over `accord serve`.

Each test gets a fresh server on a fresh store, reached only by ACCORD_ADDR / ACCORD_TOKEN: the
contract's ``accord.connect(None, "", ...)`` then goes remote (docs/remote.md, Choosing the mode).
Left out: the one contract test that writes to the database behind the store's back (a remote
client has no database); ``test_remote_live.py`` covers a write made through another server instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.config import test_live_contract as contract
from tests.harness.accord_server import AccordServer, AccordServers
from tests.harness.backends import Backend

NEEDS_THE_DATABASE = {"test_write_behind_the_bus_is_caught_by_revision_check"}
# These write nothing that lasts (their writes are refused), so they share one server to save start-ups.
SHARE_A_SERVER = {"test_reads_attribute_get_and_meta", "test_set_validates_and_writes_nothing", "test_unknown_setting"}

test_reads_attribute_get_and_meta = contract.test_reads_attribute_get_and_meta
test_set_validates_and_writes_nothing = contract.test_set_validates_and_writes_nothing
test_unknown_setting = contract.test_unknown_setting
test_own_write_visible_at_once_and_other_instance_via_bus = (
    contract.test_own_write_visible_at_once_and_other_instance_via_bus
)
test_on_change_callbacks_prefix_and_unsubscribe = contract.test_on_change_callbacks_prefix_and_unsubscribe
test_delete_falls_back_to_env_then_default = contract.test_delete_falls_back_to_env_then_default
test_history_and_rollback = contract.test_history_and_rollback
test_expect_version_conflict = contract.test_expect_version_conflict
test_set_many_is_all_or_nothing = contract.test_set_many_is_all_or_nothing
test_secrets_never_shown_in_plaintext = contract.test_secrets_never_shown_in_plaintext
test_env_seeds_then_stored_wins_and_shadow_is_reported = contract.test_env_seeds_then_stored_wins_and_shadow_is_reported
test_pinned_env_wins = contract.test_pinned_env_wins
test_stored_schema_serves_processes_without_declarations = (
    contract.test_stored_schema_serves_processes_without_declarations
)
test_sync_api = contract.test_sync_api


def test_every_contract_test_runs_remote_or_is_named_as_left_out() -> None:
    contract_tests = {name for name in dir(contract) if name.startswith("test_")}
    here = {name for name in globals() if name.startswith("test_")} - {
        "test_every_contract_test_runs_remote_or_is_named_as_left_out"
    }
    assert contract_tests - NEEDS_THE_DATABASE == here


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AccordServer]:
    workdir = tmp_path_factory.mktemp("remote-contract")
    servers = AccordServers(workdir)
    try:
        yield servers.start(f"sqlite:///{workdir}/accord.db", "", expect_token=True)
    finally:
        servers.close()


@pytest.fixture
def contract_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    if request.node.originalname in SHARE_A_SERVER:
        server: AccordServer = request.getfixturevalue("shared_server")
    else:
        accord_servers: AccordServers = request.getfixturevalue("accord_servers")
        server = accord_servers.start(request.getfixturevalue("sqlite_url"), "", expect_token=True)
    assert server.token is not None
    for name in ("ACCORD_DB_URL", "ACCORD_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACCORD_ADDR", server.addr)
    monkeypatch.setenv("ACCORD_TOKEN", server.token)
    yield Backend("remote", None, "")  # type: ignore[arg-type]  # no database URL: that is the point
