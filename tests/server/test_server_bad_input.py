"""Bad input gets a clear 4xx with {"error", "detail"}: never a 500, never a partial write."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.harness import AccordServer
from tests.server.server_harness import assert_error_body, revision

MIB = 1024 * 1024
JSON = {"content-type": "application/json"}


def _nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def _nested_dict(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


@dataclass
class Case:
    method: str
    url: str
    body: dict[str, Any] = field(default_factory=dict)  # httpx request arguments
    status: tuple[int, ...] = (422,)
    detail: str = ""  # a fragment the message must contain (case-insensitive)


CASES = {
    "malformed json": Case(
        "PUT", "/api/config/llm.model", {"content": b'{"value": "x",', "headers": JSON}, detail="json"
    ),
    "not an object": Case("PUT", "/api/config/llm.model", {"content": b'"x"', "headers": JSON}),
    "empty body": Case("PUT", "/api/config/llm.model", {"content": b"", "headers": JSON}),
    "form body": Case("PUT", "/api/config/llm.model", {"data": {"value": "x"}}),
    "value and input": Case(
        "PUT", "/api/config/llm.model", {"json": {"value": "x", "input": "x"}}, detail="exactly one"
    ),
    "wrong value type": Case("PUT", "/api/config/llm.max_output", {"json": {"value": "many"}}, detail="llm.max_output"),
    "bool for int": Case("PUT", "/api/config/llm.max_output", {"json": {"value": True}}, detail="llm.max_output"),
    "float for int": Case("PUT", "/api/config/llm.max_output", {"json": {"value": 5.5}}, detail="llm.max_output"),
    "out of range": Case("PUT", "/api/config/llm.temperature", {"json": {"value": 7}}, detail="llm.temperature"),
    "typed input invalid": Case("PUT", "/api/config/llm.max_output", {"json": {"input": "ten"}}, detail="max_output"),
    "expect_version text": Case("PUT", "/api/config/llm.model", {"json": {"value": "x", "expect_version": "v1"}}),
    "expect_version negative": Case("PUT", "/api/config/llm.model", {"json": {"value": "x", "expect_version": -1}}),
    "expect_version huge": Case("PUT", "/api/config/llm.model", {"json": {"value": "x", "expect_version": 2**70}}),
    "unknown put field": Case(
        "PUT", "/api/config/llm.model", {"json": {"value": "x", "colour": "red"}}, detail="colour"
    ),
    "unknown rollback field": Case(
        "POST", "/api/config/llm.model/rollback", {"json": {"to_version": 1, "force": True}}, detail="force"
    ),
    "rollback version text": Case("POST", "/api/config/llm.model/rollback", {"json": {"to_version": "one"}}),
    "rollback version huge": Case("POST", "/api/config/llm.model/rollback", {"json": {"to_version": 2**64}}),
    "unknown import field": Case(
        "POST", "/api/config/import", {"json": {"settings": {}, "mode": "merge"}}, detail="mode"
    ),
    "import settings list": Case("POST", "/api/config/import", {"json": {"settings": [["llm.model", "x"]]}}),
    "import bad path": Case("POST", "/api/config/import", {"json": {"settings": {"llm..model": "x"}}}, (404, 422)),
    "migrate list body": Case("POST", "/api/config/migrate", {"json": [1, 2]}),
    "migrate bad value": Case("POST", "/api/config/migrate", {"json": {"llm": {"max_output": "lots"}}}, detail="max"),
    "unknown token field": Case("POST", "/api/tokens", {"json": {"name": "n1", "admin": True}}, detail="admin"),
    "bad token rule": Case("POST", "/api/tokens", {"json": {"name": "n2", "rules": ["config/=root"]}}),
    "bad token name": Case("POST", "/api/tokens", {"json": {"name": "a b", "rules": []}}),
    "2 MiB body": Case("PUT", "/api/config/llm.model", {"content": b" " * (2 * MIB), "headers": JSON}, (413,), "bytes"),
    "2 MiB chunked body": Case(
        "PUT", "/api/config/llm.model", {"content": iter([b" " * MIB] * 2), "headers": JSON}, (413,), "bytes"
    ),
    "600 KiB value": Case(
        "PUT", "/api/config/llm.model", {"json": {"value": "v" * (600 * 1024)}}, (413, 422), "524288"
    ),
    "600 KiB input": Case("PUT", "/api/config/llm.model", {"json": {"input": "v" * (600 * 1024)}}, (413, 422)),
    "600 KiB import": Case(
        "POST", "/api/config/import", {"json": {"settings": {"llm.model": "v" * (600 * 1024)}}}, (413, 422)
    ),
    "nested 5000 value": Case(
        "PUT", "/api/config/llm.model", {"content": b'{"value": ' + _nested(5000) + b"}", "headers": JSON}, (400, 422)
    ),
    "nested 900 value": Case(
        "PUT", "/api/config/llm.model", {"content": b'{"value": ' + _nested(900) + b"}", "headers": JSON}, (400, 422)
    ),
    "nested 5000 import": Case(
        "POST",
        "/api/config/import",
        {"content": b'{"settings": {"llm.model": ' + _nested_dict(5000) + b"}}", "headers": JSON},
        (400, 422),
    ),
    "nested 5000 migrate": Case(
        "POST", "/api/config/migrate", {"content": _nested_dict(5000), "headers": JSON}, (400, 422)
    ),
    "double dot path": Case("PUT", "/api/config/llm..model", {"json": {"value": "x"}}, (404, 422)),
    "no category path": Case("PUT", "/api/config/model", {"json": {"value": "x"}}, (404, 422)),
    "bad char path": Case("PUT", "/api/config/llm.mod%20el!", {"json": {"value": "x"}}, (404, 422)),
    "long path": Case("PUT", "/api/config/llm." + "m" * 600, {"json": {"value": "x"}}, (404, 422)),
    "unknown setting": Case("PUT", "/api/config/llm.nothing", {"json": {"value": "x"}}, (404,), "llm.nothing"),
    "unknown category": Case("GET", "/api/config?category=nothing", status=(404,), detail="nothing"),
    "diff backwards": Case("GET", "/api/config/diff?from_revision=5&to_revision=2"),
    "diff negative": Case("GET", "/api/config/diff?from_revision=-1"),
    "diff huge": Case("GET", f"/api/config/diff?from_revision=0&to_revision={2**64}"),
    "watch huge revision": Case("GET", f"/api/watch?from_revision={2**64}"),
    "audit huge revision": Case("GET", f"/api/audit?before_revision={2**64}"),
    "audit since garbage": Case("GET", "/api/audit?since=yesterday"),
    "audit since too early": Case("GET", "/api/audit?since=0001-01-01T00:00:00%2B05:00"),
    "audit since too late": Case("GET", "/api/audit?since=9999-12-31T23:00:00-05:00"),
    "audit NUL actor": Case("GET", "/api/audit?actor=a%00b"),
    "audit NUL prefix": Case("GET", "/api/audit?prefix=config%00"),
    "history limit zero": Case("GET", "/api/config/llm.model/history?limit=0"),
    "delete expect text": Case("DELETE", "/api/config/llm.model?expect_version=latest"),
    "reveal not bool": Case("GET", "/api/config/llm.model?reveal=maybe"),
}


@pytest.fixture(scope="module")
def admin(module_server: AccordServer) -> Iterator[httpx.Client]:
    with module_server.admin() as client:
        assert client.put("/api/config/llm.model", json={"value": "before"}).status_code == 200
        yield client


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_clearly_and_writes_nothing(admin: httpx.Client, name: str) -> None:
    case = CASES[name]
    before_revision = revision(admin)
    before_values = admin.get("/api/config").json()["settings"]

    answer = admin.request(case.method, case.url, **case.body)

    body = assert_error_body(answer, case.status)
    assert case.detail.lower() in body["detail"].lower(), body
    assert len(body["detail"]) < 2000, f"an error message should be readable, not {len(body['detail'])} characters"
    assert revision(admin) == before_revision, "a refused request wrote something"
    assert admin.get("/api/config").json()["settings"] == before_values


def test_the_server_logged_no_crash(module_server: AccordServer, admin: httpx.Client) -> None:
    assert admin.get("/api/config/llm.model").json()["value"] == "before"
    logs = module_server.logs()
    assert "Exception in ASGI application" not in logs
    assert "unhandled" not in logs and "Traceback" not in logs
