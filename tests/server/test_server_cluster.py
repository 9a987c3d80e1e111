"""Two `accord serve` processes on one PostgreSQL and Redis, with no balancer: each sees the other's writes."""

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.harness import AccordServer, wait_until
from tests.server.server_harness import Stack, create_token, declare

Pair = tuple[AccordServer, AccordServer]


@pytest.fixture(scope="module")
def pair(module_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Two servers on one database and Redis; A starts first, so A prints the management token."""
    declare(module_stack.db_url, module_stack.redis_url)
    servers = [AccordServer(module_stack.db_url, module_stack.redis_url, tmp_path_factory.mktemp(n)) for n in "ab"]
    try:
        yield servers[0].start(), servers[1].start()
    finally:
        for server in servers:
            server.stop()


def _value_on(client: httpx.Client, path: str, *, reveal: bool = False) -> object:
    answer = client.get(f"/api/config/{path}", params={"reveal": "true"} if reveal else None)
    assert answer.status_code == 200, answer.text
    return answer.json()["value"]


def test_a_put_on_one_server_is_read_on_the_other(pair: Pair) -> None:
    a, b = pair
    assert a.token is not None
    assert b.token is None, "the second server must not create (or print) another management token"
    with a.client(a.token) as on_a, b.client(a.token) as on_b:
        for writer, reader, path, value in [
            (on_a, on_b, "llm.model", f"model-{uuid.uuid4().hex}"),
            (on_b, on_a, "embedding.batch_size", 77),
            (on_a, on_b, "llm.temperature", 1.25),
        ]:
            answer = writer.put(f"/api/config/{path}", json={"value": value})
            assert answer.status_code == 200, answer.text
            wait_until(lambda p=path, v=value, r=reader: _value_on(r, p) == v, what=f"{path}={value!r} on the peer")

        deleted = on_b.delete("/api/config/llm.model")
        assert deleted.status_code == 200, deleted.text
        wait_until(lambda: _value_on(on_a, "llm.model") == "gpt-4o", what="the delete on A")


def test_a_secret_written_on_one_server_is_revealed_by_the_other(pair: Pair) -> None:
    a, b = pair
    secret = f"sk-{uuid.uuid4().hex}{uuid.uuid4().hex}"
    with a.admin() as on_a, b.client(a.token) as on_b:
        assert on_a.put("/api/config/llm.openai_api_key", json={"value": secret}).status_code == 200
        wait_until(lambda: _value_on(on_b, "llm.openai_api_key", reveal=True) == secret, what="the secret on B")
        masked = _value_on(on_b, "llm.openai_api_key")
        assert masked != secret and secret not in str(masked)


def test_tokens_created_and_revoked_on_one_server_apply_on_the_other(pair: Pair) -> None:
    a, b = pair
    with a.admin() as on_a:
        reader = create_token(on_a, "reader", ["config/=read"])
        with b.client(reader) as reader_on_b, b.client() as plain_b:
            wait_until(lambda: reader_on_b.get("/api/config/llm.model").status_code == 200, what="token on B")
            assert reader_on_b.put("/api/config/llm.model", json={"value": "x"}).status_code == 403

            revoked = on_a.delete("/api/tokens/reader")
            assert revoked.status_code == 200, revoked.text
            refused = wait_until(
                lambda: (r := reader_on_b.get("/api/config/llm.model")).status_code == 401 and r,
                what="the revocation on B",
            )
            assert refused.headers.get("www-authenticate", "").lower().startswith("bearer")
            assert refused.json()["error"] == "AuthenticationError"
            listed = plain_b.get("/api/tokens", headers={"Authorization": f"Bearer {a.token}"})
            assert "reader" not in [t["name"] for t in listed.json()]
