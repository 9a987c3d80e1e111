"""A secret never appears unmasked in any response body or log line, unless a reveal_secrets token asks.

Every plaintext carries a random marker in its middle (masks keep only the first and last four
characters), and the marker is searched for in every body of every endpoint and in the server's
stdout and stderr, captured at --log-level debug.
"""

import uuid

import httpx

from tests.harness import AccordServer
from tests.server.server_harness import Serve, collect_until, create_token, sse_events


def _plain(marker: str, n: int) -> str:
    return f"sk-live-{marker}-{n}-tail"


def _exercise(server: AccordServer, marker: str) -> list[httpx.Response]:
    """Write secrets every way the API allows, make writes of secrets fail every way, and read everything."""
    seen: list[httpx.Response] = []
    key, org = "/api/config/llm.openai_api_key", "/api/config/llm.org_id"
    with server.admin() as admin:
        put = admin.put
        seen += [put(key, json={"value": _plain(marker, 1)}), put(key, json={"value": _plain(marker, 2)})]
        seen.append(put(org, json={"input": _plain(marker, 3)}))
        seen.append(put(key, json={"value": _plain(marker, 4), "expect_version": 1}))  # 409
        seen.append(put(key, json={"value": [_plain(marker, 5)]}))  # wrong type
        seen.append(put(key, json={"value": {"nested": _plain(marker, 6)}}))
        seen.append(put(key, content=f'{{"value": "{_plain(marker, 7)}\\ud800"}}', headers=_json()))  # not Unicode
        seen.append(put(key, content=f'{{"value": "{_plain(marker, 8)}"', headers=_json()))  # malformed JSON
        seen.append(put(org, json={"value": _plain(marker, 9), "unknown": 1}))
        bad_import = {"llm.openai_api_key": _plain(marker, 10), "llm.org_id": _plain(marker, 11), "llm.temperature": 9}
        seen.append(admin.post("/api/config/import", json={"settings": bad_import}))
        seen.append(admin.post("/api/config/import", json={"settings": {"llm.org_id": [_plain(marker, 12)]}}))
        seen.append(
            admin.post(
                "/api/config/import", params={"dry_run": "true"}, json={"settings": {"llm.org_id": _plain(marker, 13)}}
            )
        )
        seen.append(admin.post("/api/config/import", json={"settings": {"llm.org_id": _plain(marker, 14)}}))
        legacy = {"llm": {"openai_api_key": f'"\\"{_plain(marker, 15)}\\""'}}
        seen.append(admin.post("/api/config/migrate", params={"dry_run": "true"}, json=legacy))
        seen.append(admin.post("/api/config/migrate", json=legacy))
        seen.append(admin.post("/api/config/migrate", json={"llm": {"org_id": [_plain(marker, 16)]}}))
        seen.append(admin.post(f"{key}/rollback", json={"to_version": 1}))
        seen.append(admin.delete(org, params={"expect_version": 99}))
        seen += _reads(admin)
        seen.append(_watched(admin))
    return seen


def _json() -> dict[str, str]:
    return {"content-type": "application/json"}


def _reads(client: httpx.Client) -> list[httpx.Response]:
    paths = ["/api/config", "/api/config?category=llm", "/api/config/export", "/api/audit?limit=1000"]
    paths += ["/api/config/diff?from_revision=0", "/api/tokens"]
    for setting in ("llm.openai_api_key", "llm.org_id"):
        paths += [f"/api/config/{setting}", f"/api/config/{setting}/history"]
    return [client.get(path) for path in paths]


def _watched(admin: httpx.Client) -> httpx.Response:
    """The SSE stream from revision 0, read up to a sentinel write, kept as one response body."""
    sentinel = uuid.uuid4().hex
    with admin.stream("GET", "/api/watch", params={"from_revision": 0}) as stream:
        assert admin.put("/api/config/llm.model", json={"value": sentinel}).status_code == 200
        events = collect_until(sse_events(stream), lambda e: e.data.get("value") == sentinel)
    assert any(e.data["path"] == "llm.openai_api_key" for e in events), "the watch saw no secret change at all"
    return httpx.Response(200, text="\n".join(repr(e) for e in events), request=stream.request)


def test_secrets_never_leak_in_responses_or_logs(serve: Serve, pg_url: str, redis_url: str) -> None:
    marker = uuid.uuid4().hex
    server = serve(pg_url, redis_url, log_level="debug", debug_everything=True)
    responses = _exercise(server, marker)

    statuses = [r.status_code for r in responses]
    assert 200 in statuses and 409 in statuses and 422 in statuses, statuses
    assert all(r.status_code < 500 for r in responses), [
        (r.request.url, r.text) for r in responses if r.is_server_error
    ]
    for answer in responses:
        assert marker not in answer.text, (
            f"secret leaked by {answer.request.method} {answer.request.url}: {answer.text}"
        )
        assert marker not in str(answer.headers)
    with server.admin() as admin:
        masked = admin.get("/api/config/llm.org_id").json()
        assert masked["secret"] is True and masked["value"].startswith("sk-l") and "****" in masked["value"]

    server.stop()
    logs = server.logs()
    assert "PUT /api/config/llm.openai_api_key" in logs, "the access log was not captured"
    # the store's write statement: a function call on PostgreSQL, plain INSERTs on SQLite
    assert "accord_put_groups(" in logs or "INSERT INTO accord_kv_history" in logs, "the debug SQL log was not captured"
    assert marker not in logs, "a secret leaked into the server's log"


def test_only_a_reveal_token_with_reveal_true_sees_a_secret(serve: Serve, pg_url: str, redis_url: str) -> None:
    server = serve(pg_url, redis_url)
    plain = _plain(uuid.uuid4().hex, 0)
    with server.admin() as admin:
        assert admin.put("/api/config/llm.org_id", json={"value": plain}).status_code == 200
        writer = create_token(admin, "writer", ["config/=write"])
        revealer = create_token(admin, "revealer", ["config/llm/=read"], reveal=True)
    with server.client(writer) as client:
        for url in ("/api/config/llm.org_id", "/api/config/llm.org_id/history"):
            assert plain not in client.get(url).text
            refused = client.get(url, params={"reveal": "true"})
            assert refused.status_code == 403 and plain not in refused.text
    with server.client(revealer) as client:
        assert plain not in client.get("/api/config/llm.org_id").text, "reveal_secrets alone must not reveal"
        assert client.get("/api/config/llm.org_id", params={"reveal": "true"}).json()["value"] == plain
        history = client.get("/api/config/llm.org_id/history", params={"reveal": "true"}).json()
        assert history[0]["value"] == plain
        assert client.get("/api/config/embedding.model", params={"reveal": "true"}).status_code == 403
