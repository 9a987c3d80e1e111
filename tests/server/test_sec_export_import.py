"""/api/config/export fails with a status before its first byte; an import dry-run tests no secret guesses."""

from __future__ import annotations

import asyncio
import base64
import json
import os

import httpx
import pytest

import accord
from tests.server.server_harness import GROUPS, Serve, create_token


def _store_secret(db_url: str, redis_url: str, plain: str) -> None:
    async def run() -> None:
        async with await accord.connect(db_url, redis_url, groups=GROUPS, watch=False) as cfg:
            await cfg.set("llm.org_id", plain)
            await cfg.set("llm.model", "kept")

    asyncio.run(run())


def test_an_export_that_cannot_complete_is_an_error_status(
    serve: Serve, pg_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _store_secret(pg_url, redis_url, "sk-live-sealed-under-another-key")
    monkeypatch.setenv("ACCORD_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    server = serve(pg_url, redis_url, declare_first=False)
    with server.admin() as admin:
        answer = admin.get("/api/config/export")
        assert answer.status_code == 503, (answer.status_code, answer.text)
        assert answer.json()["error"] == "DecryptionError"
        sealed = admin.get("/api/config/export", params={"sealed": "true"})
        assert sealed.status_code == 200 and json.loads(sealed.text)["settings"]["llm.model"] == "kept"


def test_a_dry_run_does_not_tell_a_non_revealing_token_whether_a_guess_matches(
    serve: Serve, pg_url: str, redis_url: str
) -> None:
    plain = "sk-live-the-real-secret-value"
    _store_secret(pg_url, redis_url, plain)
    server = serve(pg_url, redis_url, declare_first=False)
    with server.admin() as admin:
        writer = create_token(admin, "writer", ["config/=write"])

    def dry_run(client: httpx.Client, guess: str) -> dict[str, object]:
        body = {"settings": {"llm.org_id": guess}}
        answer = client.post("/api/config/import", params={"dry_run": "true"}, json=body)
        assert answer.status_code == 200, answer.text
        result: dict[str, object] = answer.json()
        return result

    with server.client(writer) as client:
        right, wrong = dry_run(client, plain), dry_run(client, "sk-live-a-wrong-guess-value")
        assert right["unchanged"] == wrong["unchanged"] == 0
        assert client.get("/api/config/export", params={"sealed": "true"}).status_code == 403
    with server.admin() as admin:
        assert dry_run(admin, plain)["unchanged"] == 1, "a revealing token still sees an unchanged secret as such"
