"""Schemathesis over the live server's OpenAPI schema, with a valid management token: no 5xx, no schema violation.

Two operations are left out of the generated traffic: GET /api/watch is an endless event stream (a
fuzzer would only time out on it; test_server_watch.py covers it), and DELETE /api/tokens/{name}
would let the fuzzer revoke the very token it runs with (schemathesis reuses names it saw in
responses), after which every request is a 401 and nothing is tested (test_server_acl.py covers it).
"""

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.server.server_harness import Serve

EXCLUDED_OPERATION = "revoke_token_api_tokens__name__delete"


@pytest.mark.timeout(300)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    serve: Serve, pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    server = serve(pg_url, redis_url, log_level="info")
    schema = httpx.get(f"{server.url}/openapi.json", timeout=30.0).json()
    operation_ids = {op["operationId"] for item in schema["paths"].values() for op in item.values()}
    assert EXCLUDED_OPERATION in operation_ids, "the excluded operation was renamed: update this test"

    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{server.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {server.token}",
        "--checks",
        "not_a_server_error,response_schema_conformance",
        "--max-examples",
        "25",
        "--phases",
        "examples,coverage,fuzzing",
        "--exclude-path",
        "/api/watch",
        "--exclude-operation-id",
        EXCLUDED_OPERATION,
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        "--no-color",
        "--seed",
        "20261124",
    ]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=280, check=False)
    report = run.stdout + run.stderr
    assert run.returncode == 0, f"schemathesis found problems:\n{report[-12000:]}"
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    tested = re.search(r"Tested: (\d+)", report)
    assert selected and tested, f"unexpected schemathesis report:\n{report}"
    assert int(tested[1]) == int(selected[1]) == int(selected[2]) - 2 >= 15, f"operations went untested:\n{report}"

    server.stop()
    logs = server.logs()
    assert "Exception in ASGI application" not in logs and "unhandled" not in logs, logs[-5000:]
