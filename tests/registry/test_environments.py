"""Environment profiles (ACCORD_ENV): env/<profile>/config/... wins over the base key, the setting's
environment variable and its default, and every read names the winning layer (docs/config.md)."""

from __future__ import annotations

import json

import pytest

import accord
from accord.core.errors import InvalidKeyError, ValidationFailedError
from tests.cli.cli_helpers import run_cli
from tests.harness import AccordServers
from tests.registry.fleet_worker import Knobs
from tests.registry.test_fleet import Worker


async def test_profile_precedence_through_the_python_api(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACCORD_ENV", raising=False)
    async with await accord.connect(sqlite_url, "", groups=[Knobs], watch=False) as admin:
        monkeypatch.setenv("FLEET_LEVEL", "7")
        monkeypatch.setenv("ACCORD_ENV", "production")
        async with await accord.connect(sqlite_url, "", groups=[Knobs], check_interval=0.2) as prod:
            assert prod.profile == "production"
            assert (prod.get("knobs.level"), prod.meta("knobs.level").source) == (7, "env")  # nothing stored yet
            await admin.set("knobs.level", 1)
            await prod.resync()
            assert (prod.get("knobs.level"), prod.meta("knobs.level").source) == (1, "stored")
            change = await admin.set_profile("production", "knobs.level", 5)
            assert change.key == "env/production/config/knobs/level"
            await prod.resync()
            meta = prod.meta("knobs.level")
            assert (meta.value, meta.source, meta.mod_revision) == (5, "profile", change.revision)
            assert prod.knobs.level == 5
            assert [e.key for e in prod.entries("env/production/")] == [change.key]  # the replica holds the profile
            with pytest.raises(ValidationFailedError):
                await admin.set_profile("production", "knobs.level", "high")
            with pytest.raises(InvalidKeyError):
                await admin.set_profile("prod/../x", "knobs.level", 1)
            await admin.set_profile("production", "knobs.token", "sk-prod-secret-0123456789")
            stored = await admin.store.get("env/production/config/knobs/token")
            assert stored is not None and stored.secret and b"sk-prod" not in stored.value  # sealed like the base
            await prod.resync()
            assert (prod.get("knobs.token"), prod.meta("knobs.token").source) == (
                "sk-prod-secret-0123456789",
                "profile",
            )
        monkeypatch.setenv("ACCORD_ENV", "staging")  # another profile sees only the base layer
        async with await accord.connect(sqlite_url, "", groups=[Knobs], watch=False) as staging:
            assert (staging.get("knobs.level"), staging.meta("knobs.level").source) == (1, "stored")
        monkeypatch.delenv("ACCORD_ENV")
        async with await accord.connect(sqlite_url, "", groups=[Knobs], watch=False) as base:
            assert (base.get("knobs.level"), base.meta("knobs.level").source) == (1, "stored")


def _get(
    db: str | None,
    path: str,
    *args: str,
    addr: str | None = None,
    token: str | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, object]:
    done = run_cli("config", "get", path, *args, "--json", db=db, addr=addr, token=token, extra=extra)
    row: dict[str, object] = json.loads(done.stdout)
    return row


async def test_profile_precedence_through_the_cli_and_a_running_instance(
    sqlite_url: str, accord_servers: AccordServers
) -> None:
    async with await accord.connect(sqlite_url, "", groups=[Knobs], watch=False) as admin:
        await admin.set("knobs.level", 1)
    worker = Worker(sqlite_url, {"ACCORD_ENV": "production"})
    try:
        assert worker.line() == "value 1 stored"
        run_cli("config", "set", "--env", "production", "knobs.level", "9", db=sqlite_url)
        assert worker.line() == "value 9 profile"  # the running instance applied its profile's value live
        assert run_cli("config", "set", "--env", "production", "knobs.level", "x", db=sqlite_url, code=2)
        assert _get(sqlite_url, "knobs.level")["source"] == "stored"
        prod = _get(sqlite_url, "knobs.level", extra={"ACCORD_ENV": "production"})
        assert (prod["value"], prod["source"]) == (9, "profile")
        layer = _get(sqlite_url, "knobs.level", "--env", "production")
        assert (layer["value"], layer["key"]) == (9, "env/production/config/knobs/level")
        listed = json.loads(
            run_cli("config", "list", "--json", db=sqlite_url, extra={"ACCORD_ENV": "production"}).stdout
        )
        assert {r["path"]: r["source"] for r in listed}["knobs.level"] == "profile"

        server = accord_servers.start(sqlite_url, "", log_level="warning", expect_token=True)
        run_cli("config", "set", "--env", "production", "knobs.level", "11", addr=server.addr, token=server.token)
        assert worker.line() == "value 11 profile"
        over_http = _get(None, "knobs.level", "--env", "production", addr=server.addr, token=server.token)
        assert over_http["value"] == 11
        assert _get(None, "knobs.level", addr=server.addr, token=server.token)["value"] == 1

        # unset --env removes the profile's layer only: the running instance falls back to the base value
        removed = run_cli(
            "config", "unset", "--env", "production", "knobs.level", addr=server.addr, token=server.token
        ).stdout
        assert "removed knobs.level from env production" in removed and "was 11" in removed
        assert worker.line() == "value 1 stored"
        assert _get(None, "knobs.level", addr=server.addr, token=server.token)["value"] == 1
        gone = run_cli("config", "unset", "--env", "production", "knobs.level", db=sqlite_url, code=4)
        assert "no value in environment profile 'production'" in gone.stderr
        run_cli("config", "set", "--env", "staging", "knobs.level", "3", db=sqlite_url)
        row = json.loads(run_cli("config", "unset", "--env", "staging", "knobs.level", "--json", db=sqlite_url).stdout)
        assert (row["env"], row["value"], row["source"]) == ("staging", 3, "removed")
    finally:
        worker.stop()
