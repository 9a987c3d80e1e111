"""The same `accord` commands against a real `accord serve` (ACCORD_ADDR) and straight on the database."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.cli.cli_helpers import SECRET, AccordServer, ServerFactory, await_server_value, both, one_line_error, run_cli


def both_ways(server: AccordServer, *args: str, code: int = 0) -> tuple[subprocess.CompletedProcess[str], ...]:
    """Run a command on the database and over HTTP: (direct, http)."""
    return both(server.db_url, server.addr, server.token, *args, code=code)


@pytest.fixture
def server(llm_db: str, start_server: ServerFactory) -> AccordServer:
    return start_server(llm_db)


def test_reads_print_the_same_both_ways(server: AccordServer) -> None:
    seeded = str(json.loads(run_cli("status", "--json", db=server.db_url).stdout)["revision"])  # declarations count
    run_cli("config", "set", "llm.timeout_s", "90", addr=server.addr, token=server.token)
    run_cli("config", "set", "llm.stop", '["###"]', db=server.db_url)
    await_server_value(server, "llm.stop", ["###"])
    commands = [
        ("config", "list"),
        ("config", "list", "--prefix", "llm.", "--json"),
        ("config", "get", "llm.api_key", "--json"),
        ("config", "history", "llm.timeout_s"),
        ("config", "history", "llm.timeout_s", "--json"),
        ("config", "diff", "--from-revision", seeded, "--json"),
        ("config", "export"),
    ]
    out = {}
    for args in commands:
        direct, http = both_ways(server, *args)
        assert direct.stdout == http.stdout, args
        assert SECRET not in direct.stdout
        out[args] = http.stdout
    assert "sk-l****cdef" in out["config", "list"] and "llm.timeout_s" in out["config", "list"]
    history = json.loads(out["config", "history", "llm.timeout_s", "--json"])
    assert [(row["version"], row["value"]) for row in history] == [(2, 90), (1, 45)]
    assert history[0]["actor"] == "management" and history[1]["actor"] != "management"
    diff = json.loads(out["config", "diff", "--from-revision", seeded, "--json"])
    assert {row["path"]: row["new"] for row in diff["changes"]} == {"llm.timeout_s": 90, "llm.stop": ["###"]}
    status = json.loads(run_cli("status", "--json", addr=server.addr, token=server.token).stdout)
    assert status["ready"] is True and status["settings"] == 4 and status["revision"] == export_revision(out)
    export = json.loads(out["config", "export"])
    assert export["settings"] == {"llm.api_key": "sk-l****cdef", "llm.stop": ["###"], "llm.timeout_s": 90}


def test_writes_over_http_and_errors_match_direct(server: AccordServer) -> None:
    over = {"addr": server.addr, "token": server.token}
    changed = json.loads(run_cli("config", "set", "llm.model", "o3", "--json", **over).stdout)
    assert (changed["old"], changed["new"], changed["version"], changed["source"]) == ("gpt-4o", "o3", 1, "stored")
    assert json.loads(run_cli("config", "get", "llm.model", "--json", db=server.db_url).stdout)["value"] == "o3"
    rolled = json.loads(run_cli("config", "rollback", "llm.timeout_s", "--to-version", "1", "--json", **over).stdout)
    assert (rolled["value"], rolled["version"]) == (45, 2)
    unset = json.loads(run_cli("config", "unset", "llm.model", "--json", **over).stdout)
    assert (unset["value"], unset["source"]) == ("gpt-4o", "default")
    failures = [
        (("config", "set", "llm.timeout_s", "601"), 2),
        (("config", "set", "llm.nope", "1"), 2),
        (("config", "set", "llm.timeout_s", "40", "--expect-version", "7"), 3),
        (("config", "rollback", "llm.timeout_s", "--to-version", "9"), 4),
        (("config", "unset", "llm.model"), 4),
    ]
    for args, code in failures:
        direct, http = both_ways(server, *args, code=code)
        assert one_line_error(direct) == one_line_error(http), args
    assert json.loads(run_cli("config", "get", "llm.timeout_s", "--json", **over).stdout)["version"] == 2


def test_auth_and_address_errors_are_one_clean_line(server: AccordServer) -> None:
    assert server.token is not None
    cases = [
        ({"addr": server.addr}, 6, "ACCORD_TOKEN is not set"),
        ({"addr": server.addr, "token": "acc_" + "x" * 43}, 6, "unknown, revoked or expired"),
        ({"addr": "http://127.0.0.1:1", "token": server.token}, 5, "ACCORD_ADDR=http://127.0.0.1:1"),
        ({"addr": "http://user:pw@127.0.0.1:1", "token": server.token}, 5, "ACCORD_ADDR=http://127.0.0.1:1"),
        ({"addr": "ftp://example.invalid", "token": server.token}, 2, "ACCORD_ADDR"),
    ]
    for where, code, needle in cases:
        proc = run_cli("config", "list", **where, code=code)
        line = one_line_error(proc)
        assert needle in line, line
        assert server.token not in proc.stdout + proc.stderr and "pw@" not in line


def export_revision(out: dict[tuple[str, ...], str]) -> int:
    revision: int = json.loads(out["config", "export"])["revision"]
    return revision
