"""POST /api/config/import: a dry run changes nothing, a failing import changes nothing, a good one is one step."""

import itertools
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.harness import AccordServer
from tests.server.server_harness import assert_error_body, revision

_BATCHES = itertools.count(1)


@pytest.fixture
def admin(module_server: AccordServer) -> Iterator[httpx.Client]:
    with module_server.admin() as client:
        yield client


def _values(admin: httpx.Client) -> dict[str, object]:
    return {row["path"]: row["value"] for row in admin.get("/api/config").json()["settings"]}


def _fresh_batch() -> dict[str, object]:
    """Values that differ from everything stored before, so every one of them is a change."""
    tag, n = uuid.uuid4().hex[:10], next(_BATCHES)
    return {
        "llm.model": f"model-{tag}",
        "llm.temperature": n / 1000,
        "llm.max_output": 100 + n,
        "llm.org_id": f"org-{tag}-0123456789",
        "embedding.model": f"emb-{tag}",
        "embedding.batch_size": 16 + n,
    }


def test_dry_run_returns_the_diff_and_changes_nothing(admin: httpx.Client) -> None:
    before_values, before_revision = _values(admin), revision(admin)
    batch = _fresh_batch()
    answer = admin.post("/api/config/import", params={"dry_run": "true"}, json={"settings": batch})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["dry_run"] is True
    changes = {row["path"]: row for row in body["changes"]}
    assert set(changes) == set(batch)
    expected = {"path": "llm.model", "old": before_values["llm.model"], "new": batch["llm.model"], "note": None}
    assert changes["llm.model"] == expected
    assert changes["llm.org_id"]["new"] != batch["llm.org_id"] and "****" in changes["llm.org_id"]["new"]
    assert revision(admin) == before_revision
    assert _values(admin) == before_values
    assert admin.get("/api/audit", params={"limit": 1}).json()[0]["revision"] <= before_revision


def test_one_invalid_value_among_many_changes_nothing(admin: httpx.Client) -> None:
    before_values, before_revision = _values(admin), revision(admin)
    batch = _fresh_batch() | {"embedding.batch_size": 0}  # ge=1
    answer = admin.post("/api/config/import", json={"settings": batch})
    body = assert_error_body(answer, 422)
    assert "embedding.batch_size" in body["detail"] and "nothing was imported" in body["detail"]
    for other in ("llm.model", "llm.max_output", "embedding.model"):
        assert other not in body["detail"], f"a valid value ({other}) was blamed: {body['detail']}"
    assert revision(admin) == before_revision
    assert _values(admin) == before_values

    unknown = admin.post("/api/config/import", json={"settings": _fresh_batch() | {"llm.nope": 1}})
    assert "llm.nope" in assert_error_body(unknown, (404, 422))["detail"]
    assert revision(admin) == before_revision and _values(admin) == before_values


def test_a_good_import_writes_everything_in_one_step(admin: httpx.Client) -> None:
    before = revision(admin)
    batch = _fresh_batch()
    answer = admin.post("/api/config/import", json={"settings": batch}, headers={"X-Request-ID": "import-" + "x" * 8})
    assert answer.status_code == 200, answer.text
    changed = {row["path"] for row in answer.json()["changes"]}
    assert answer.json()["dry_run"] is False and changed == set(batch)
    assert revision(admin) == before + len(changed)

    values = _values(admin)
    for path, value in batch.items():
        assert values[path] == value or (path == "llm.org_id" and "****" in str(values[path]))
    assert admin.get("/api/config/llm.org_id", params={"reveal": "true"}).json()["value"] == batch["llm.org_id"]

    rows = admin.get("/api/audit", params={"limit": len(changed)}).json()
    assert sorted(row["revision"] for row in rows) == list(range(before + 1, before + len(changed) + 1))
    assert {row["path"] for row in rows} == changed
    assert {row["request_id"] for row in rows} == {"import-xxxxxxxx"}
    assert {row["action"] for row in rows} == {"import"}

    again = admin.post("/api/config/import", json={"settings": batch})
    assert again.status_code == 200 and again.json()["changes"] == [] and again.json()["unchanged"] == len(batch)
    assert revision(admin) == before + len(changed)
