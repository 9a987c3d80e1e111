"""The CLI over HTTP against a server on PostgreSQL + Redis prints what it prints on that database directly."""

from __future__ import annotations

import json

import accord
from tests.cli.cli_helpers import SECRET, Llm, ServerFactory, await_server_value, both, run_cli


async def test_postgres_and_redis_server(pg_url: str, redis_url: str, start_server: ServerFactory) -> None:
    async with await accord.connect(pg_url, redis_url, groups=[Llm], watch=False) as cfg:
        await cfg.set("llm.api_key", SECRET)
    server = start_server(pg_url, redis_url=redis_url)
    over = {"addr": server.addr, "token": server.token}
    run_cli("config", "set", "llm.timeout_s", "75", **over)
    run_cli("config", "set", "llm.timeout_s", "80", db=pg_url, extra={"ACCORD_REDIS_URL": redis_url})
    await_server_value(server, "llm.timeout_s", 80)
    outputs = {}
    for args in (("config", "list", "--json"), ("config", "history", "llm.timeout_s"), ("config", "export")):
        direct, http = both(pg_url, server.addr, server.token, *args, extra={"ACCORD_REDIS_URL": redis_url})
        assert direct.stdout == http.stdout, args
        outputs[args] = http.stdout
    listed = {row["path"]: row for row in json.loads(outputs["config", "list", "--json"])}
    assert listed["llm.timeout_s"]["value"] == 80 and listed["llm.api_key"]["value"] == "sk-l****cdef"
    assert "management" in outputs["config", "history", "llm.timeout_s"] and SECRET not in str(outputs)
    created = json.loads(run_cli("token", "create", "--name", "ci", "--rule", "config/=read", "--json", **over).stdout)
    got = run_cli("config", "get", "llm.timeout_s", "--json", addr=server.addr, token=created["secret"])
    assert json.loads(got.stdout)["value"] == 80
    run_cli("config", "set", "llm.timeout_s", "81", addr=server.addr, token=created["secret"], code=7)
