"""Secrets written through the API are not readable from the database (or the Redis cache) without the key.

Each test also writes a non-secret value with its own marker and finds it in the same bytes: that proves
the search looks where the data is, so the absence of the secret's marker means something.
"""

import asyncio
import base64
import json
import uuid
from pathlib import Path

import asyncpg
import redis

from tests.harness import AccordServer, wait_until
from tests.server.server_harness import Serve


def _write_through_api(server: AccordServer, secret_marker: str, plain_marker: str) -> None:
    with server.admin() as admin:
        for path, value in [
            ("llm.openai_api_key", f"sk-{secret_marker}-one"),
            ("llm.openai_api_key", f"sk-{secret_marker}-two"),  # history keeps the first version too
            ("llm.org_id", f"org-{secret_marker}"),
            ("llm.model", f"model-{plain_marker}"),
        ]:
            assert admin.put(f"/api/config/{path}", json={"value": value}).status_code == 200
        assert admin.post("/api/config/import", json={"settings": {"llm.org_id": f"imp-{secret_marker}"}}).is_success
        assert admin.post("/api/config/llm.openai_api_key/rollback", json={"to_version": 1}).is_success
        revealed = admin.get("/api/config/llm.openai_api_key", params={"reveal": "true"}).json()["value"]
        assert revealed == f"sk-{secret_marker}-one", "the server itself must still read the secret"


def _sqlite_bytes(db_file: Path) -> bytes:
    """The database file with its WAL and shared-memory files: committed pages may still sit in the WAL."""
    return b"".join(path.read_bytes() for path in sorted(db_file.parent.glob(db_file.name + "*")))


def test_sqlite_file_holds_no_secret_plaintext(serve: Serve, sqlite_url: str) -> None:
    secret_marker, plain_marker = uuid.uuid4().hex, uuid.uuid4().hex
    server = serve(sqlite_url, "")
    _write_through_api(server, secret_marker, plain_marker)
    db_file = Path(sqlite_url.removeprefix("sqlite:///"))

    contents = _sqlite_bytes(db_file)
    assert plain_marker.encode() in contents, "the non-secret control value is not in the files searched"
    assert secret_marker.encode() not in contents
    server.stop()  # a clean shutdown checkpoints the WAL into the main file: search again
    contents = _sqlite_bytes(db_file)
    assert plain_marker.encode() in contents
    assert secret_marker.encode() not in contents


async def _pg_values(db_url: str) -> list[bytes]:
    """Every stored value, read with a plain driver connection (no accord code, so no key)."""
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch("SELECT key, value FROM accord_kv UNION ALL SELECT key, value FROM accord_kv_history")
    finally:
        await conn.close()
    return [row["key"].encode() + b"=" + bytes(row["value"]) for row in rows if row["value"] is not None]


def test_postgres_tables_hold_no_secret_plaintext(serve: Serve, pg_url: str, redis_url: str) -> None:
    secret_marker, plain_marker = uuid.uuid4().hex, uuid.uuid4().hex
    server = serve(pg_url, redis_url)
    _write_through_api(server, secret_marker, plain_marker)

    values = asyncio.run(_pg_values(pg_url))
    assert any(plain_marker.encode() in value for value in values), "the control value is not in the tables"
    assert sum(value.startswith(b"config/llm/openai_api_key=") for value in values) >= 4  # kv row + history rows
    leaked = [value for value in values if secret_marker.encode() in value]
    assert not leaked, f"secret plaintext stored in PostgreSQL: {leaked}"

    cached = wait_until(
        lambda: (dump := _redis_dump(redis_url)) and plain_marker.encode() in dump and dump, what="cache"
    )
    assert secret_marker.encode() not in cached, "secret plaintext in the Redis cache"


def _redis_dump(redis_url: str) -> bytes:
    """Every Redis key and value, with cached entries' base64 values decoded (decoding needs no key)."""
    chunks = []
    with redis.Redis.from_url(redis_url) as client:
        for key in client.scan_iter():
            if client.type(key) != b"hash":
                chunks.append(key + b"=" + repr(client.dump(key)).encode())
                continue
            for field, raw in client.hgetall(key).items():
                chunks += [key + b"/" + field + b"=" + raw, _decoded_entry(raw)]
    return b"\n".join(chunks)


def _decoded_entry(raw: bytes) -> bytes:
    try:
        return base64.b64decode(json.loads(raw)["value"])
    except (ValueError, KeyError, TypeError):
        return b""
