"""accord's environment, read in one place: every variable, its one default, and bad values named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import accord
from accord.core.environ import DEFAULT_START_TIMEOUT_S, Environ, current
from accord.core.errors import EnvironError

EVERYTHING = {
    "ACCORD_DB_URL": "sqlite:///tmp/a.db",
    "ACCORD_REDIS_URL": "redis://localhost:6379/3",
    "ACCORD_ADDR": "  http://127.0.0.1:8500  ",
    "ACCORD_TOKEN": "acc_secret-token-value",
    "ACCORD_ACTOR": "deploy-bot",
    "ACCORD_START_TIMEOUT": "2.5",
    "ACCORD_SNAPSHOT_FILE": "/var/lib/accord/lkg.json",
    "ACCORD_ENV_OVERRIDE": "Yes",
    "ACCORD_MASTER_KEY": "bWFzdGVyLWtleS1tYXN0ZXIta2V5LW1hc3Rlci1rZXk=",
    "ACCORD_MASTER_KEYS_RETIRED": "b2xkLWtleS0x, ,b2xkLWtleS0y",
}


def test_every_variable_is_parsed() -> None:
    assert Environ.from_mapping(EVERYTHING) == Environ(
        db_url="sqlite:///tmp/a.db",
        redis_url="redis://localhost:6379/3",
        addr="http://127.0.0.1:8500",
        token="acc_secret-token-value",
        actor="deploy-bot",
        start_timeout=2.5,
        snapshot_file="/var/lib/accord/lkg.json",
        env_override=True,
        master_key="bWFzdGVyLWtleS1tYXN0ZXIta2V5LW1hc3Rlci1rZXk=",
        master_keys_retired=("b2xkLWtleS0x", "b2xkLWtleS0y"),
    )


def test_unset_and_empty_mean_the_one_default() -> None:
    empty = dict.fromkeys(EVERYTHING, "")
    assert Environ.from_mapping({}) == Environ.from_mapping(empty) == Environ()
    assert Environ().start_timeout == DEFAULT_START_TIMEOUT_S == 30.0
    assert Environ().env_override is False
    assert Environ().addr is None and Environ().redis_url is None


@pytest.mark.parametrize("text", ["soon", "-1", "nan", "inf", "1e400"])
def test_a_bad_start_timeout_names_the_variable_and_the_value(text: str) -> None:
    with pytest.raises(EnvironError) as caught:
        Environ.from_mapping({"ACCORD_START_TIMEOUT": text})
    assert "ACCORD_START_TIMEOUT" in caught.value.detail and json.dumps(text) in caught.value.detail
    assert caught.value.variable == "ACCORD_START_TIMEOUT"
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(("text", "flag"), [("1", True), ("on", True), (" TRUE ", True), ("0", False), ("off", False)])
def test_env_override_flags(text: str, flag: bool) -> None:
    assert Environ.from_mapping({"ACCORD_ENV_OVERRIDE": text}).env_override is flag


def test_a_bad_flag_names_the_variable_and_the_value() -> None:
    with pytest.raises(EnvironError, match=r'ACCORD_ENV_OVERRIDE="maybe"'):
        Environ.from_mapping({"ACCORD_ENV_OVERRIDE": "maybe"})


def test_secrets_never_show_in_the_repr() -> None:
    shown = repr(Environ.from_mapping(EVERYTHING))
    for name in ("ACCORD_TOKEN", "ACCORD_MASTER_KEY"):
        assert EVERYTHING[name] not in shown
    assert "b2xkLWtleS0x" not in shown
    assert "deploy-bot" in shown  # the rest is there, so the check above can fail


def test_current_reads_the_environment_as_it_is_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCORD_ACTOR", "first")
    assert current().actor == "first"
    monkeypatch.setenv("ACCORD_ACTOR", "second")
    assert current().actor == "second"


def test_a_bad_master_key_is_named_but_never_echoed() -> None:
    from accord.core.crypto import cipher_for_database

    text = "not-base64-but-a-secret-anyway!!"
    with pytest.raises(accord.AccordError) as caught:
        cipher_for_database("postgresql://db/x", environ={"ACCORD_MASTER_KEY": text})
    assert "ACCORD_MASTER_KEY" in caught.value.detail and text not in caught.value.detail


def test_the_cli_reports_a_bad_variable_in_one_line(tmp_path: Path) -> None:
    accord_exe = Path(sys.executable).with_name("accord")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    env |= {"ACCORD_START_TIMEOUT": "ten", "ACCORD_DB_URL": f"sqlite:///{tmp_path}/a.db"}
    done = subprocess.run(
        [str(accord_exe), "config", "list"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == 'error: ACCORD_START_TIMEOUT="ten" is not a number of seconds (e.g. 30 or 2.5)'
