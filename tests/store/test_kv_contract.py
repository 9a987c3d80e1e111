"""The contract of the revisioned KV store, run against SQLite and PostgreSQL (real servers, no mocks)."""

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.core.errors import (
    CompactedError,
    ConflictError,
    InvalidKeyError,
    NotFoundError,
    ValueTooLargeError,
)
from accord.core.keys import MAX_KEY_BYTES, MAX_VALUE_BYTES
from accord.store.kv import SqlKVStore
from accord.store.types import PutItem


@pytest.fixture(params=["sqlite", "postgres"])
def kv_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database on each engine; servers are only started for the engine in use."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
async def kv(kv_url: str) -> AsyncIterator[SqlKVStore]:
    async with await SqlKVStore.from_url(kv_url) as store:
        yield store


async def _state(store: SqlKVStore) -> tuple[int, list[tuple[str, bytes, int]]]:
    revision, entries = await store.snapshot()
    return revision, [(e.key, e.value, e.version) for e in entries]


async def test_revision_is_global_and_bumps_once_per_mutation(kv: SqlKVStore) -> None:
    start = await kv.current_revision()
    a1 = await kv.put("a", b"1")
    b1 = await kv.put("b", b"1")
    a2 = await kv.put("a", b"2")
    gone = await kv.delete("b")
    assert [a1.revision, b1.revision, a2.revision, gone.revision] == [start + 1, start + 2, start + 3, start + 4]
    assert await kv.current_revision() == start + 4
    assert (a1.version, a2.version, b1.version) == (1, 2, 1)
    entry = await kv.get("a")
    assert entry is not None
    assert (entry.value, entry.version, entry.create_revision, entry.mod_revision) == (b"2", 2, start + 1, start + 3)
    assert await kv.get("b") is None


async def test_cas_match_mismatch_and_create_only(kv: SqlKVStore) -> None:
    assert (await kv.put("k", b"v1", expect_version=0)).version == 1
    with pytest.raises(ConflictError) as info:
        await kv.put("k", b"again", expect_version=0)
    assert (info.value.expected, info.value.actual, info.value.key) == (0, 1, "k")
    assert (await kv.put("k", b"v2", expect_version=1)).version == 2
    before = await _state(kv)
    with pytest.raises(ConflictError) as info:
        await kv.put("k", b"stale", expect_version=1)
    assert (info.value.expected, info.value.actual) == (1, 2)
    with pytest.raises(ConflictError):
        await kv.put("new", b"x", expect_version=3)
    assert await _state(kv) == before
    assert [c.value for c in await kv.history("k")] == [b"v2", b"v1"]


async def test_delete_missing_and_cas_delete(kv: SqlKVStore) -> None:
    before = await _state(kv)
    with pytest.raises(NotFoundError):
        await kv.delete("missing")
    assert await _state(kv) == before
    await kv.put("k", b"v1")
    await kv.put("k", b"v2")
    revision = await kv.current_revision()
    with pytest.raises(ConflictError):
        await kv.delete("k", expect_version=1)
    assert await kv.current_revision() == revision
    assert (await kv.get("k")) is not None
    deleted = await kv.delete("k", expect_version=2)
    assert (deleted.op, deleted.version, deleted.value, deleted.revision) == ("delete", 3, None, revision + 1)
    assert await kv.get("k") is None


async def test_history_is_append_only_newest_first(kv: SqlKVStore) -> None:
    await kv.put("k", b"v1", actor="ann")
    await kv.put("other", b"x")
    await kv.put("k", b"v2", actor="bob")
    await kv.delete("k", actor="cy")
    history = await kv.history("k")
    assert [(c.op, c.version, c.value, c.actor) for c in history] == [
        ("delete", 3, None, "cy"),
        ("put", 2, b"v2", "bob"),
        ("put", 1, b"v1", "ann"),
    ]
    assert [c.revision for c in history] == sorted((c.revision for c in history), reverse=True)
    assert [c.version for c in await kv.history("k", limit=1)] == [3]


async def test_rollback_writes_a_new_revision_and_keeps_the_past(kv: SqlKVStore) -> None:
    await kv.put("k", b"v1")
    await kv.put("k", b"v2")
    revision = await kv.current_revision()
    back = await kv.rollback("k", 1)
    assert (back.op, back.value, back.version, back.revision) == ("put", b"v1", 3, revision + 1)
    entry = await kv.get("k")
    assert entry is not None and (entry.value, entry.version) == (b"v1", 3)
    assert [(c.version, c.value) for c in await kv.history("k")] == [(3, b"v1"), (2, b"v2"), (1, b"v1")]


async def test_rollback_to_a_delete_deletes_and_missing_version_fails(kv: SqlKVStore) -> None:
    await kv.put("k", b"v1")
    await kv.delete("k")
    await kv.put("k", b"again")
    assert (await kv.rollback("k", 2)).op == "delete"
    assert await kv.get("k") is None
    before = await _state(kv)
    with pytest.raises(NotFoundError):
        await kv.rollback("k", 99)
    with pytest.raises(NotFoundError):
        await kv.rollback("never", 1)
    assert await _state(kv) == before


async def test_a_key_written_again_after_a_delete_continues_its_versions(kv: SqlKVStore) -> None:
    """Versions never restart (issue 8, item 12): each names one value of the key for ever."""
    assert (await kv.put("k", b"old-1")).version == 1
    assert (await kv.delete("k")).version == 2
    again = await kv.put("k", b"new-1")
    assert again.version == 3
    entry = await kv.get("k")
    assert entry is not None and entry.version == 3 and entry.create_revision == again.revision
    assert (await kv.put("k", b"new-2", expect_version=3)).version == 4
    assert [c.version for c in await kv.history("k")] == [4, 3, 2, 1]
    assert (await kv.rollback("k", 1)).value == b"old-1"
    assert (await kv.rollback("k", 3)).value == b"new-1"
    await kv.delete("k")
    assert (await kv.put("k", b"created", expect_version=0)).version == 8  # create-only still means "absent now"


async def test_changes_since_returns_exactly_the_later_changes(kv: SqlKVStore) -> None:
    await kv.put("a", b"1")
    mark = await kv.current_revision()
    await kv.put("b", b"1")
    await kv.put("a", b"2")
    await kv.delete("b")
    changes = await kv.changes_since(mark)
    assert [(c.revision, c.key, c.op, c.value) for c in changes] == [
        (mark + 1, "b", "put", b"1"),
        (mark + 2, "a", "put", b"2"),
        (mark + 3, "b", "delete", None),
    ]
    assert await kv.changes_since(mark + 3) == []
    assert [c.revision for c in await kv.changes_since(mark, limit=2)] == [mark + 1, mark + 2]


async def test_compact_keeps_latest_row_per_key_and_refuses_old_replays(kv: SqlKVStore) -> None:
    start = await kv.current_revision()
    for value in (b"1", b"2", b"3"):
        await kv.put("a", value)
    await kv.put("b", b"only")
    await kv.put("c", b"x")
    await kv.delete("c")
    await kv.put("a", b"4")
    below = start + 6
    removed = await kv.compact(below)
    assert removed == 4  # a@1..a@3 and c's put; b's only row is its latest, so it survives below the mark
    for old in (start, below - 1):
        with pytest.raises(CompactedError) as info:
            await kv.changes_since(old)
        assert info.value.compacted_revision == below
    assert [c.value for c in await kv.history("a")] == [b"4"]
    assert [c.value for c in await kv.history("b")] == [b"only"]
    assert [c.op for c in await kv.history("c")] == ["delete"]
    assert [(c.key, c.value) for c in await kv.changes_since(below)] == [("a", b"4")]
    await kv.put("b", b"later")
    assert [c.value for c in await kv.changes_since(below)] == [b"4", b"later"]
    assert (await kv.get("a")) is not None


async def test_put_many_is_all_or_nothing(kv: SqlKVStore) -> None:
    await kv.put("taken", b"1")
    before = await _state(kv)
    items = [PutItem("x", b"1"), PutItem("y", b"2"), PutItem("taken", b"2", expect_version=0), PutItem("z", b"3")]
    with pytest.raises(ConflictError):
        await kv.put_many(items)
    assert await _state(kv) == before
    with pytest.raises(InvalidKeyError):
        await kv.put_many([PutItem("ok", b"1"), PutItem("bad key", b"1")])
    assert await _state(kv) == before
    changes = await kv.put_many([PutItem("x", b"1"), PutItem("taken", b"2", expect_version=1)], actor="batch")
    assert [c.revision for c in changes] == [before[0] + 1, before[0] + 2]
    assert [(c.key, c.version, c.actor) for c in changes] == [("x", 1, "batch"), ("taken", 2, "batch")]


@pytest.mark.parametrize("key", ["bad key", "é", "/lead", "a//b", "a/./b", "trail/", "", "k" * (MAX_KEY_BYTES + 1)])
async def test_invalid_keys_are_refused_and_nothing_is_written(kv: SqlKVStore, key: str) -> None:
    before = await _state(kv)
    with pytest.raises(InvalidKeyError):
        await kv.put(key, b"v")
    with pytest.raises(InvalidKeyError):
        await kv.delete(key)
    assert await _state(kv) == before


async def test_size_limits(kv: SqlKVStore) -> None:
    longest = "k/" + "x" * (MAX_KEY_BYTES - 2)
    assert (await kv.put(longest, b"v")).key == longest
    big = b"\xff" * MAX_VALUE_BYTES
    await kv.put("big", big)
    entry = await kv.get("big")
    assert entry is not None and entry.value == big
    before = await _state(kv)
    with pytest.raises(ValueTooLargeError):
        await kv.put("big", big + b"x")
    with pytest.raises(ValueTooLargeError):
        await kv.put("other", big + b"x")
    assert await _state(kv) == before


async def test_snapshot_by_prefix(kv: SqlKVStore) -> None:
    await kv.put("config/a/x", b"1")
    await kv.put("config/b/y", b"2")
    await kv.put("configs/z", b"3")
    await kv.put("other", b"4")
    revision, entries = await kv.snapshot("config/")
    assert revision == await kv.current_revision()
    assert [e.key for e in entries] == ["config/a/x", "config/b/y"]
    assert [e.key for e in (await kv.snapshot())[1]] == ["config/a/x", "config/b/y", "configs/z", "other"]
    assert (await kv.snapshot("nothing/"))[1] == []


async def test_migrations_are_idempotent(kv_url: str) -> None:
    async with await SqlKVStore.from_url(kv_url) as first:
        await first.put("k", b"kept")
    async with await SqlKVStore.from_url(kv_url) as second:
        entry = await second.get("k")
        assert entry is not None and entry.value == b"kept"
        assert await second.current_revision() == 1
        assert (await second.put("k", b"next")).revision == 2


async def test_concurrent_cas_increments_lose_nothing(kv: SqlKVStore) -> None:
    await kv.put("counter", b"0")

    async def increment_ten_times() -> None:
        for _ in range(10):
            while True:
                entry = await kv.get("counter")
                assert entry is not None
                try:
                    await kv.put("counter", str(int(entry.value) + 1).encode(), expect_version=entry.version)
                    break
                except ConflictError:
                    await asyncio.sleep(random.uniform(0, 0.01))  # jitter, as a real client backs off

    await asyncio.wait_for(asyncio.gather(*(increment_ten_times() for _ in range(20))), timeout=100)
    entry = await kv.get("counter")
    assert entry is not None and (entry.value, entry.version) == (b"200", 201)
    history = await kv.history("counter")
    assert [c.version for c in history] == list(range(201, 0, -1))
    assert [int(c.value or b"") for c in history] == list(range(200, -1, -1))


# ----- property: the store agrees with a tiny in-memory model ----------------------------------------------

_KEYS = st.sampled_from(["a", "b", "c"])
_EXPECT = st.none() | st.integers(min_value=0, max_value=4)
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), _KEYS, st.binary(max_size=8), _EXPECT),
        st.tuples(st.just("delete"), _KEYS, st.just(b""), _EXPECT),
    ),
    min_size=1,
    max_size=25,
)


def _model_step(
    model: dict[str, tuple[int, bytes]], last: dict[str, int], op: str, key: str, value: bytes, expect: int | None
) -> str:
    """Apply one operation to the model; returns "ok", "conflict" or "missing".

    ``last`` is each key's last version, a delete's included: a key written again continues from it.
    """
    current = model.get(key)
    actual = current[0] if current else 0
    if op == "delete" and current is None:
        return "missing"
    if expect is not None and expect != actual:
        return "conflict"
    last[key] = last.get(key, 0) + 1
    if op == "delete":
        del model[key]
    else:
        model[key] = (last[key], value)
    return "ok"


async def _check_against_model(url: str, ops: list[tuple[str, str, bytes, int | None]]) -> None:
    prefix = f"p{uuid.uuid4().hex[:12]}/"
    model: dict[str, tuple[int, bytes]] = {}
    last: dict[str, int] = {}
    async with await SqlKVStore.from_url(url) as store:
        for op, name, value, expect in ops:
            key = prefix + name
            revision = await store.current_revision()
            outcome = _model_step(model, last, op, name, value, expect)
            try:
                if op == "put":
                    change = await store.put(key, value, expect_version=expect)
                else:
                    change = await store.delete(key, expect_version=expect)
                got = "ok"
            except ConflictError:
                got = "conflict"
            except NotFoundError:
                got = "missing"
            assert got == outcome, (op, name, expect)
            assert await store.current_revision() == revision + (1 if got == "ok" else 0)
            if got == "ok":
                assert change.revision == revision + 1
            _, entries = await store.snapshot(prefix)
            assert {e.key.removeprefix(prefix): (e.version, e.value) for e in entries} == model


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
def test_cas_agrees_with_a_model(kv_url: str, ops: list[tuple[str, str, bytes, int | None]]) -> None:
    asyncio.run(_check_against_model(kv_url, ops))
