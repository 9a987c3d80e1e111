"""The LiveConfig contract on every backend: SQLite, PostgreSQL, and PostgreSQL + Redis (real servers)."""

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, Protocol

import pytest

import accord
from accord import Setting, SettingChange, SettingsGroup
from accord.store.kv import SqlKVStore

MODEL_ENV = "ACCORD_TEST_EMBEDDING_MODEL"
REGION_ENV = "ACCORD_TEST_EMBEDDING_REGION"
API_KEY = "sk-live-0123456789abcdef-PLAINTEXT"


class Embedding(SettingsGroup, category="embedding"):
    model: str = Setting("bge-m3", env=MODEL_ENV)
    batch_size: int = Setting(2048, ge=1)
    code: str = Setting("abc", pattern=r"^[a-z]+$")
    region: str = Setting("eu", env=REGION_ENV, pin_env=True)
    api_key: str = Setting("")
    password: str = Setting("initial-pw", min_length=8)


class Search(SettingsGroup, category="search"):
    top_k: int = Setting(10, ge=1, le=100)
    tags: list[str] = Setting([])


GROUPS: list[type[SettingsGroup]] = [Embedding, Search]


class Backend(Protocol):
    name: str
    db_url: str
    redis_url: str


async def _connect(backend: Backend, *, groups: list[type[SettingsGroup]] | None = GROUPS, **options: Any) -> Any:
    options = {"check_interval": 0.2, "poll_interval": 0.02} | options
    return await accord.connect(backend.db_url, backend.redis_url, groups=groups, **options)


async def _eventually(check: Callable[[], bool], what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


async def test_reads_attribute_get_and_meta(contract_backend: Backend) -> None:
    async with await _connect(contract_backend) as cfg:
        assert cfg.embedding.model == "bge-m3"
        assert cfg.search.top_k == 10
        assert cfg.get("embedding.batch_size") == 2048
        meta = cfg.meta("search.tags")
        assert (meta.path, meta.value, meta.version, meta.source, meta.pinned) == (
            "search.tags",
            [],
            0,
            "default",
            False,
        )
        with pytest.raises(AttributeError):
            _ = cfg.nothing
        with pytest.raises(AttributeError):
            cfg.embedding.model = "direct"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("path", "value", "rule"),
    [
        ("embedding.batch_size", "many", "must be an integer"),
        ("embedding.batch_size", 0, "must be >= 1"),
        ("search.top_k", 101, "must be <= 100"),
        ("embedding.code", "ABC", "must match the pattern"),
        ("search.tags", "not-a-list", "must be a list"),
    ],
)
async def test_set_validates_and_writes_nothing(contract_backend: Backend, path: str, value: object, rule: str) -> None:
    async with await _connect(contract_backend) as cfg:
        revision = await cfg.store.current_revision()
        with pytest.raises(accord.ValidationFailedError) as info:
            await cfg.set(path, value)
        assert path in info.value.detail and json.dumps(value) in info.value.detail and rule in info.value.detail
        assert await cfg.store.current_revision() == revision
        assert await cfg.history(path) == []
        assert cfg.meta(path).source == "default"


async def test_unknown_setting(contract_backend: Backend) -> None:
    async with await _connect(contract_backend) as cfg:
        revision = await cfg.store.current_revision()
        for call in (
            cfg.set("embedding.nope", 1),
            cfg.set_many({"embedding.model": "x", "nope.at_all": 1}),
            cfg.delete("nope.x"),
        ):
            with pytest.raises(accord.UnknownSettingError):
                await call
        with pytest.raises(accord.UnknownSettingError):
            cfg.get("embedding.nope")
        assert await cfg.store.current_revision() == revision
        assert cfg.embedding.model == "bge-m3"


async def test_own_write_visible_at_once_and_other_instance_via_bus(contract_backend: Backend) -> None:
    async with await _connect(contract_backend) as writer, await _connect(contract_backend, check_interval=60) as other:
        meta = await writer.set("embedding.model", "bge-large")
        assert writer.embedding.model == "bge-large"
        assert (meta.value, meta.version, meta.source) == ("bge-large", 1, "stored")
        await writer.set("search.tags", ["a", "b"])
        assert writer.get("search.tags") == ["a", "b"]
        await _eventually(lambda: other.search.tags == ["a", "b"], "the second instance to see the write")
        assert other.embedding.model == "bge-large"
        assert other.meta("embedding.model").version == 1
        assert other.last_revision == writer.last_revision


async def test_on_change_callbacks_prefix_and_unsubscribe(contract_backend: Backend) -> None:
    async with await _connect(contract_backend) as writer, await _connect(contract_backend, check_interval=60) as other:
        plain: list[SettingChange] = []
        searched: list[SettingChange] = []
        from_async: list[SettingChange] = []
        local: list[SettingChange] = []

        async def record(change: SettingChange) -> None:
            await asyncio.sleep(0)
            from_async.append(change)

        stop_plain = other.on_change("embedding.", plain.append)
        other.on_change("search.", searched.append)
        other.on_change("embedding.model", record)
        writer.on_change("", local.append)

        await writer.set("embedding.model", "m2")
        await writer.set("search.top_k", 20)
        await _eventually(lambda: len(searched) == 1 and len(from_async) == 1, "callbacks on the other instance")
        assert [(c.path, c.old, c.new, c.version, c.op) for c in plain] == [
            ("embedding.model", "bge-m3", "m2", 1, "put")
        ]
        assert [(c.path, c.new) for c in searched] == [("search.top_k", 20)]
        assert [(c.path, c.new) for c in from_async] == [("embedding.model", "m2")]
        assert [c.path for c in local] == ["embedding.model", "search.top_k"]
        assert plain[0].revision < searched[0].revision

        stop_plain()
        await writer.set("embedding.model", "m3")
        await writer.set("search.top_k", 30)
        await _eventually(lambda: len(searched) == 2 and len(from_async) == 2, "the second round of callbacks")
        assert len(plain) == 1
        assert from_async[1].old == "m2" and from_async[1].new == "m3"


async def test_delete_falls_back_to_env_then_default(
    contract_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await _connect(contract_backend) as cfg:
        await cfg.set("search.top_k", 42)
        meta = await cfg.delete("search.top_k")
        assert (meta.value, meta.source, meta.version) == (10, "default", 0)
        assert cfg.search.top_k == 10
        with pytest.raises(accord.NotFoundError):
            await cfg.delete("search.top_k")
    monkeypatch.setenv(MODEL_ENV, "from-env")
    async with await _connect(contract_backend) as cfg:
        await cfg.set("embedding.model", "stored")
        meta = await cfg.delete("embedding.model")
        assert (meta.value, meta.source) == ("from-env", "env")


async def test_history_and_rollback(contract_backend: Backend) -> None:
    async with await _connect(contract_backend) as cfg:
        await cfg.set("search.top_k", 11)
        await cfg.set("search.top_k", 12)
        await cfg.set("search.top_k", 13)
        meta = await cfg.rollback("search.top_k", 1)
        assert (meta.value, meta.version) == (11, 4)
        assert cfg.search.top_k == 11
        history = await cfg.history("search.top_k")
        assert [(h.version, h.value, h.op) for h in history] == [
            (4, 11, "put"),
            (3, 13, "put"),
            (2, 12, "put"),
            (1, 11, "put"),
        ]
        assert [h.version for h in await cfg.history("search.top_k", limit=2)] == [4, 3]
        await cfg.delete("search.top_k")
        await cfg.set("search.top_k", 50)
        assert (await cfg.rollback("search.top_k", 5)).source == "default"  # version 5 was the delete
        with pytest.raises(accord.NotFoundError):
            await cfg.rollback("search.top_k", 99)


async def test_expect_version_conflict(contract_backend: Backend) -> None:
    async with await _connect(contract_backend) as cfg:
        await cfg.set("embedding.model", "first", expect_version=0)
        revision = await cfg.store.current_revision()
        with pytest.raises(accord.ConflictError):
            await cfg.set("embedding.model", "second", expect_version=0)
        with pytest.raises(accord.ConflictError):
            await cfg.delete("embedding.model", expect_version=5)
        assert await cfg.store.current_revision() == revision
        assert cfg.embedding.model == "first"
        assert (await cfg.set("embedding.model", "second", expect_version=1)).version == 2


async def test_set_many_is_all_or_nothing(contract_backend: Backend) -> None:
    async with await _connect(contract_backend) as cfg:
        revision = await cfg.store.current_revision()
        with pytest.raises(accord.ValidationFailedError):
            await cfg.set_many({"embedding.model": "x", "search.top_k": 5, "embedding.batch_size": 0})
        assert await cfg.store.current_revision() == revision
        assert (cfg.embedding.model, cfg.search.top_k) == ("bge-m3", 10)
        metas = await cfg.set_many({"embedding.model": "x", "search.top_k": 5})
        assert [(m.path, m.value, m.mod_revision) for m in metas] == [
            ("embedding.model", "x", revision + 1),
            ("search.top_k", 5, revision + 2),
        ]


async def test_secrets_never_shown_in_plaintext(contract_backend: Backend) -> None:
    async with await _connect(contract_backend) as cfg:
        assert cfg.spec("embedding.api_key").secret and cfg.spec("embedding.password").secret
        changes: list[SettingChange] = []
        cfg.on_change("embedding.", changes.append)
        meta = await cfg.set("embedding.api_key", API_KEY)
        assert meta.value == API_KEY and cfg.embedding.api_key == API_KEY  # the reading process sees it
        await cfg.set("embedding.api_key", API_KEY + "-2")
        history = await cfg.history("embedding.api_key")
        shown = [repr(meta), str(meta), repr(cfg.embedding), *map(repr, changes), *map(repr, history)]
        shown += [repr(m) for m in cfg.all("embedding.")]
        assert len(changes) == 2 and len(history) == 2
        for text in shown:
            assert API_KEY not in text and "PLAINTEXT" not in text, text
        entry = await cfg.store.get("config/embedding/api_key")  # at rest it is ciphertext
        assert entry is not None and entry.secret and b"PLAINTEXT" not in entry.value
        assert all(b"PLAINTEXT" not in (c.value or b"") for c in await cfg.store.history(entry.key))
        with pytest.raises(accord.ValidationFailedError) as info:
            await cfg.set("embedding.password", "hunter2")
        assert "hunter2" not in info.value.detail and "embedding.password" in info.value.detail


async def test_env_seeds_then_stored_wins_and_shadow_is_reported(
    contract_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MODEL_ENV, "env-model")
    async with await _connect(contract_backend) as cfg:
        meta = cfg.meta("embedding.model")
        assert (meta.value, meta.source, meta.pinned, meta.shadowed_env) == ("env-model", "env", False, None)
        meta = await cfg.set("embedding.model", "stored-model")
        assert (meta.value, meta.source, meta.shadowed_env) == ("stored-model", "stored", MODEL_ENV)
        assert cfg.embedding.model == "stored-model"


async def test_pinned_env_wins(contract_backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REGION_ENV, "us")
    async with await _connect(contract_backend) as cfg:
        meta = await cfg.set("embedding.region", "ap")
        assert (meta.value, meta.source, meta.pinned) == ("us", "env", True)
        assert cfg.embedding.region == "us"
        await cfg.set("embedding.model", "stored-model")
    monkeypatch.setenv(MODEL_ENV, "env-model")
    monkeypatch.setenv("ACCORD_ENV_OVERRIDE", "1")
    async with await _connect(contract_backend) as cfg:
        meta = cfg.meta("embedding.model")
        assert (meta.value, meta.source, meta.pinned, meta.version) == ("env-model", "env", True, 1)


async def test_write_behind_the_bus_is_caught_by_revision_check(contract_backend: Backend) -> None:
    async with await _connect(contract_backend, check_interval=0.2, poll_interval=60) as cfg:
        async with await SqlKVStore.from_url(contract_backend.db_url) as raw:
            await raw.put("config/search/top_k", b"77")
        await _eventually(lambda: cfg.search.top_k == 77, "the periodic revision check to pick up a silent write")
        assert cfg.meta("search.top_k").version == 1


async def test_stored_schema_serves_processes_without_declarations(contract_backend: Backend) -> None:
    async with await _connect(contract_backend) as app, await _connect(contract_backend, groups=None) as tool:
        assert tool.get("embedding.batch_size") == 2048
        assert tool.get("search.tags") == []
        assert tool.spec("embedding.api_key").secret
        revision = await tool.store.current_revision()
        for path, value, rule in [
            ("embedding.batch_size", 0, "must be >= 1"),
            ("embedding.batch_size", "many", "integer"),
            ("embedding.batch_size", 5.0, "integer"),
            ("embedding.batch_size", True, "integer"),
            ("embedding.code", "ABC", "match"),
            ("search.tags", [1], "string"),
        ]:
            with pytest.raises(accord.ValidationFailedError) as info:
                await tool.set(path, value)
            assert path in info.value.detail and json.dumps(value) in info.value.detail and rule in info.value.detail
            with pytest.raises(accord.ValidationFailedError) as declared:  # the declaring application agrees
                await app.set(path, value)
            assert declared.value.detail == info.value.detail  # word for word
        assert await tool.store.current_revision() == revision
        with pytest.raises(accord.UnknownSettingError):
            await tool.set("embedding.nope", 1)
        await tool.set("embedding.batch_size", 64)
        await tool.set_input("search.tags", '["x"]')
        await _eventually(lambda: app.search.tags == ["x"], "the application to see the tool's writes")
        assert app.embedding.batch_size == 64


def test_sync_api(contract_backend: Backend) -> None:
    cfg = accord.connect_sync(contract_backend.db_url, contract_backend.redis_url, groups=GROUPS, check_interval=0.2)
    try:
        assert cfg.search.top_k == 10
        meta = cfg.set("search.top_k", 33)
        assert (meta.value, meta.version) == (33, 1)
        assert cfg.get("search.top_k") == 33 and cfg.search.top_k == 33
        with pytest.raises(accord.ValidationFailedError):
            cfg.set("search.top_k", 0)
        assert [h.value for h in cfg.history("search.top_k")] == [33]
        assert cfg.delete("search.top_k").source == "default"
    finally:
        cfg.close()
    cfg.close()  # a second close is harmless
