"""Mixed put/delete batches and the tombstone query, on SQLite and PostgreSQL (the `store_backend` fixture)."""

from collections.abc import AsyncIterator

import pytest

from accord.core.errors import ConflictError, NotFoundError
from accord.store.kv import SqlKVStore
from accord.store.types import DeleteItem, PutItem
from tests.harness.backends import Backend


@pytest.fixture
async def kv(store_backend: Backend) -> AsyncIterator[SqlKVStore]:
    async with await SqlKVStore.from_url(store_backend.db_url) as store:
        yield store


async def test_a_mixed_batch_commits_every_item_with_one_revision_each(kv: SqlKVStore) -> None:
    await kv.put("t/old", b"x")
    start = await kv.current_revision()
    changes = await kv.write_batch([PutItem("t/a", b"1", 0), DeleteItem("t/old", 1), PutItem("t/a", b"2")])
    assert [(c.revision, c.key, c.op) for c in changes] == [
        (start + 1, "t/a", "put"),
        (start + 2, "t/old", "delete"),
        (start + 3, "t/a", "put"),
    ]
    entry = await kv.get("t/a")
    assert entry is not None and entry.value == b"2"
    assert await kv.get("t/old") is None


@pytest.mark.parametrize(
    "bad",
    [DeleteItem("t/other", 5), DeleteItem("t/never"), PutItem("t/other", b"z", 0)],
    ids=["stale-delete", "missing-delete", "create-only-on-existing"],
)
async def test_a_batch_with_one_failing_item_writes_nothing(kv: SqlKVStore, bad: PutItem | DeleteItem) -> None:
    await kv.put("t/keep", b"v")
    await kv.put("t/other", b"v")
    before = await kv.snapshot()
    with pytest.raises((ConflictError, NotFoundError)):
        await kv.write_batch([PutItem("t/new", b"1"), DeleteItem("t/keep", 1), bad])
    assert await kv.snapshot() == before


async def test_latest_deletes_names_deleted_keys_that_are_absent_now(kv: SqlKVStore) -> None:
    await kv.put("p/a", b"1")
    await kv.put("p/b", b"1")
    await kv.put("q/c", b"1")
    gone_a = await kv.delete("p/a")
    await kv.delete("p/b")
    await kv.put("p/b", b"again")  # written after its delete: no tombstone
    await kv.delete("q/c")
    assert await kv.latest_deletes("p/") == {"p/a": gone_a.revision}
    await kv.put("p/a", b"back")
    again = await kv.delete("p/a")
    assert await kv.latest_deletes("p/") == {"p/a": again.revision}
    assert set(await kv.latest_deletes("")) == {"p/a", "q/c"}
