"""`accord token ...` and `accord audit` against a real server and on the database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.cli.cli_helpers import SECRET, AccordServer, ServerFactory, both, one_line_error, run_cli, wait_for


@pytest.fixture
def server(llm_db: str, start_server: ServerFactory) -> AccordServer:
    return start_server(llm_db)


def status_with(server: AccordServer, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{server.addr}/api/config/llm.model", headers=headers, timeout=10).status_code


def test_bootstrap_prints_one_line_that_a_running_server_accepts(server: AccordServer) -> None:
    # ACCORD_ADDR points nowhere: bootstrap ignores it and writes to the database
    proc = run_cli("token", "bootstrap", db=server.db_url, addr="http://127.0.0.1:1", token="ignored")
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("acc_") and lines[0] == proc.stdout.strip()
    assert lines[0] != server.token and "shown once" in proc.stderr and lines[0] not in proc.stderr
    wait_for(lambda: status_with(server, lines[0]) == 200, 30, "the bootstrapped token to be accepted")
    listed = json.loads(run_cli("token", "list", "--json", addr=server.addr, token=lines[0]).stdout)
    management = [row for row in listed if row["name"].startswith("management")]
    assert len(management) == 2 and all(row["rules"] == ["=write"] and row["reveal_secrets"] for row in management)


def test_create_use_list_revoke_over_http(server: AccordServer) -> None:
    over = {"addr": server.addr, "token": server.token}
    args = ("token", "create", "--name", "reader", "--rule", "config/=read", "--rule", "config/llm/api_key=deny")
    created = json.loads(run_cli(*args, "--ttl", "12h", "--json", **over).stdout)
    secret = created["secret"]
    assert secret.startswith("acc_") and created["rules"] == ["config/=read", "config/llm/api_key=deny"]
    expires = datetime.fromisoformat(created["expires_at"]) - datetime.now(UTC)
    assert timedelta(hours=11) < expires <= timedelta(hours=12)
    reader = {"addr": server.addr, "token": secret}
    assert json.loads(run_cli("config", "get", "llm.timeout_s", "--json", **reader).stdout)["value"] == 45
    denied = run_cli("config", "set", "llm.timeout_s", "50", **reader, code=7)
    assert 'may not write llm.timeout_s (store key "config/llm/timeout_s")' in one_line_error(denied)
    assert "llm.api_key" not in run_cli("config", "list", **reader).stdout  # deny beats the shorter read rule
    plain = run_cli("token", "create", "--name", "writer", "--rule", "config/llm/=write", **over)
    assert plain.stdout.count("\n") == 1 and plain.stdout.startswith("acc_") and "shown once" in plain.stderr
    run_cli("config", "set", "llm.model", "o3", addr=server.addr, token=plain.stdout.strip())
    direct, http = both(server.db_url, server.addr, server.token, "token", "list", "--json")
    assert direct.stdout == http.stdout
    table = run_cli("token", "list", **over).stdout
    for shown in (direct.stdout, table):
        assert secret not in shown and plain.stdout.strip() not in shown and server.token not in shown
    assert "config/llm/=write" in table and "reader" in table
    revoked = run_cli("token", "revoke", "reader", **over)
    assert revoked.stdout.strip() == "revoked token reader"
    gone = run_cli("config", "get", "llm.timeout_s", **reader, code=6)
    assert "unknown, revoked or expired" in one_line_error(gone) and secret not in gone.stderr


def test_token_input_errors_are_the_same_both_ways(server: AccordServer) -> None:
    cases = [
        (("token", "create", "--name", "x", "--rule", "config=nope"), 2, 'invalid rule "config=nope"'),
        (("token", "create", "--name", "x", "--ttl", "5 parsecs"), 2, "invalid --ttl"),
        (("token", "create", "--name", "bad name!"), 2, "invalid token name"),
        (("token", "create", "--name", "management"), 2, "already exists"),
        (("token", "revoke", "nobody"), 4, 'no token named "nobody"'),
    ]
    for args, code, needle in cases:
        direct, http = both(server.db_url, server.addr, server.token, *args, code=code)
        assert one_line_error(direct) == one_line_error(http) and needle in direct.stderr, args


def test_token_created_on_the_database_works_on_the_server(server: AccordServer) -> None:
    created = run_cli("token", "create", "--name", "ops", "--rule", "=read", "--reveal-secrets", db=server.db_url)
    secret = created.stdout.strip()
    wait_for(lambda: status_with(server, secret) == 200, 30, "the new token to reach the server")
    revealed = run_cli("config", "get", "llm.api_key", "--reveal", "--json", addr=server.addr, token=secret)
    assert json.loads(revealed.stdout)["value"] == SECRET
    masked = run_cli("config", "get", "llm.api_key", "--json", addr=server.addr, token=secret)
    assert json.loads(masked.stdout)["value"] == "sk-l****cdef"


def test_audit_filters_and_masks(server: AccordServer) -> None:
    over = {"addr": server.addr, "token": server.token}
    run_cli("token", "create", "--name", "ci", "--rule", "config/llm/=write", **over)
    run_cli("config", "set", "llm.api_key", "sk-live-ffffffffffffffff", **over)
    run_cli("config", "rollback", "llm.api_key", "--to-version", "1", **over)
    everything = json.loads(run_cli("audit", "--json", **over).stdout)
    actions = [(row["actor"], row["action"], row["key"]) for row in everything]
    assert actions[:3] == [
        ("management", "rollback", "config/llm/api_key"),
        ("management", "set", "config/llm/api_key"),
        ("management", "token.create", "acl/tokens/ci"),
    ]
    assert SECRET not in json.dumps(everything) and "sk-live-ffffffffffffffff" not in json.dumps(everything)
    assert everything[0]["old"] == "sk-l****ffff" and everything[0]["new"] == "sk-l****cdef"
    assert all(row["request_id"] for row in everything[:3])
    args = ("audit", "--prefix", "config/llm/", "--actor", "management", "--action", "set", "--json")
    direct, http = both(server.db_url, server.addr, server.token, *args)
    assert direct.stdout == http.stdout
    assert [row["new"] for row in json.loads(http.stdout)] == ["sk-l****ffff"]
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert json.loads(run_cli("audit", "--since", future, "--json", **over).stdout) == []
    assert len(json.loads(run_cli("audit", "--limit", "2", "--json", **over).stdout)) == 2
    table = run_cli("audit", "--action", "rollback", **over).stdout
    assert "rollback" in table and "sk-l****cdef" in table and SECRET not in table
    bad = run_cli("audit", "--since", "yesterday", **over, code=2)
    assert "invalid --since" in one_line_error(bad)
