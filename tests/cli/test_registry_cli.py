"""`accord kv`, `services`, `health`, `service-url` as subprocesses, on the database and over HTTP.

Both ways must print the same thing (they run the same /v1 routes); `kv export` is `consul kv
export`'s format, so a document in that format imports as is and exports back unchanged.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.cli.cli_helpers import ServerFactory, both, one_line_error, run_cli

CONSUL_EXPORT = [  # what `consul kv export app/` prints: base64 values, flags, sorted keys
    {"key": "app/db/url", "flags": 0, "value": base64.b64encode(b"postgres://db:5432/app").decode()},
    {"key": "app/feature flags/beta", "flags": 42, "value": base64.b64encode(b"on").decode()},
    {"key": "app/raw", "flags": 0, "value": base64.b64encode(bytes(range(256))).decode()},
]


@pytest.fixture
def served(sqlite_url: str, start_server: ServerFactory) -> tuple[str, str, str]:
    server = start_server(sqlite_url)
    assert server.token
    return sqlite_url, server.addr, server.token


def test_consul_export_round_trips(served: tuple[str, str, str], tmp_path: Path) -> None:
    db, addr, token = served
    document = tmp_path / "export.json"
    document.write_text(json.dumps(CONSUL_EXPORT))
    run_cli("kv", "import", str(document), addr=addr, token=token)
    direct, http = both(db, addr, token, "kv", "export", "app/")
    assert json.loads(direct.stdout) == CONSUL_EXPORT
    assert json.loads(http.stdout) == CONSUL_EXPORT
    got = run_cli("kv", "get", "app/db/url", db=db)
    assert got.stdout == "postgres://db:5432/app"
    assert "database: " in got.stderr


def test_put_get_list_delete_both_ways(served: tuple[str, str, str]) -> None:
    db, addr, token = served
    run_cli("kv", "put", "svc/a", "1", db=db)
    run_cli("kv", "put", "svc/b", "2", "--flags", "7", addr=addr, token=token)
    direct, http = both(db, addr, token, "kv", "list", "svc/", "--json")
    assert json.loads(direct.stdout) == json.loads(http.stdout)
    rows = json.loads(http.stdout)
    assert [(row["key"], row["value"], row["flags"]) for row in rows] == [("svc/a", "1", 0), ("svc/b", "2", 7)]
    index = rows[0]["modify_index"]
    stale = run_cli("kv", "put", "svc/a", "x", "--cas", str(index - 1), addr=addr, token=token, code=3)
    assert "svc/a" in one_line_error(stale)
    run_cli("kv", "put", "svc/a", "x", "--cas", str(index), db=db)
    run_cli("kv", "delete", "svc/", "--recurse", addr=addr, token=token)
    missing = run_cli("kv", "get", "svc/a", db=db, code=4)
    assert '"svc/a"' in one_line_error(missing)


def test_import_refuses_a_bad_document_before_writing(served: tuple[str, str, str], tmp_path: Path) -> None:
    db, addr, token = served
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([CONSUL_EXPORT[0], {"key": "app/x", "flags": 0, "value": "not base64!"}]))
    refused = run_cli("kv", "import", str(bad), addr=addr, token=token, code=2)
    assert "item 1" in one_line_error(refused)
    run_cli("kv", "get", "app/db/url", db=db, code=4)  # the good first item was not written either


def test_services_health_and_service_url(served: tuple[str, str, str]) -> None:
    db, addr, token = served
    run_cli(
        "services",
        "register",
        "api",
        "--id",
        "api-1",
        "--port",
        "8080",
        "--address",
        "10.0.0.1",
        "--ttl",
        "30s",
        addr=addr,
        token=token,
    )
    listed = json.loads(run_cli("services", "list", "--json", db=db).stdout)
    assert {"service": "api", "tags": [], "instances": 1, "passing": 0} in listed
    health = json.loads(run_cli("health", "api", "--json", addr=addr, token=token).stdout)
    assert [(row["id"], row["status"]) for row in health] == [("api-1", "critical")]  # TTL checks start critical
    none = run_cli("service-url", "api", db=db, code=4)
    assert '"api"' in one_line_error(none)
    run_cli("kv", "put", "services/api/url", "https://api.example", addr=addr, token=token)
    assert run_cli("service-url", "api", db=db).stdout.strip() == "https://api.example"
    run_cli("services", "deregister", "api-1", addr=addr, token=token)
    gone = json.loads(run_cli("health", "api", "--json", db=db).stdout)
    assert gone == []


def test_read_only_commands_never_create_a_database(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path}/nothing.db"
    refused = run_cli("kv", "list", db=missing, code=4)
    assert "nothing.db" in one_line_error(refused)
    assert not (tmp_path / "nothing.db").exists()
