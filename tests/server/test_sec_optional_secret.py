"""A ``str | None`` secret (a union in the stored schema) through every route and the server's log.

The server only has the stored schema. Before, it could not decode a union, so it logged the
plaintext, answered a read-only token's diff, import dry-run and rollback with a 422 quoting it,
read the setting as its default and cut /api/config/export off mid-body with a 200.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx

import accord
from accord import Setting, SettingsGroup
from tests.server.server_harness import AccordServer, Serve, create_token


class Svc(SettingsGroup, category="svc"):
    api_key: str | None = Setting(None, secret=True)
    mode: str | None = Setting(None)


def _declare(db_url: str, redis_url: str) -> None:
    async def run() -> None:
        async with await accord.connect(db_url, redis_url, groups=[Svc], watch=False):
            pass

    asyncio.run(run())


def _reads(client: httpx.Client) -> list[httpx.Response]:
    paths = ["/api/config", "/api/config?category=svc", "/api/config/svc.api_key", "/api/config/svc.api_key/history"]
    paths += ["/api/config/diff?from_revision=0", "/api/config/export", "/api/audit?limit=100"]
    return [client.get(path) for path in paths]


def _serve(serve: Serve, pg_url: str, redis_url: str) -> AccordServer:
    _declare(pg_url, redis_url)
    return serve(pg_url, redis_url, declare_first=False, log_level="debug", debug_everything=True)


def test_an_optional_secret_never_leaks_and_reads_as_stored(serve: Serve, pg_url: str, redis_url: str) -> None:
    marker = uuid.uuid4().hex
    plain, second = f"sk-live-{marker}-1-tail", f"sk-live-{marker}-2-tail"
    server = _serve(serve, pg_url, redis_url)
    seen: list[httpx.Response] = []
    with server.admin() as admin:
        seen += [admin.put("/api/config/svc.api_key", json={"value": v}) for v in (plain, second)]
        seen.append(admin.put("/api/config/svc.mode", json={"input": "fast lane"}))
        reader = create_token(admin, "reader", ["config/=write"])
    with server.client(reader) as client:
        seen += _reads(client)
        seen.append(client.post("/api/config/import", params={"dry_run": "true"}, json={"settings": {}}))
        guess = {"settings": {"svc.api_key": plain}}
        seen.append(client.post("/api/config/import", params={"dry_run": "true"}, json=guess))
        seen.append(client.post("/api/config/svc.api_key/rollback", json={"to_version": 1}))
        seen += _reads(client)
    for answer in seen:
        assert answer.status_code == 200, (answer.request.url, answer.status_code, answer.text)
        assert marker not in answer.text, f"{answer.request.method} {answer.request.url} leaked: {answer.text}"
    with server.admin() as admin:
        row = admin.get("/api/config/svc.api_key").json()
        assert row["source"] == "stored" and row["version"] == 3 and row["value"] == "sk-l****tail", row
        assert admin.get("/api/config/svc.api_key", params={"reveal": "true"}).json()["value"] == plain
        assert admin.get("/api/config/svc.mode").json()["value"] == "fast lane"
        exported = json.loads(admin.get("/api/config/export").text)
        assert exported["settings"] == {"svc.api_key": "sk-l****tail", "svc.mode": "fast lane"}
    server.stop()
    logs = server.logs()
    assert "PUT /api/config/svc.api_key" in logs, "the access log was not captured"
    assert marker not in logs, "a secret leaked into the server's log"
    assert "invalid, using the default" not in logs
