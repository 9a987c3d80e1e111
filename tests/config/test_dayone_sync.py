"""connect_sync: every write is a real blocking call, read back by a second, async process view.

Issue 8 item 11: ``set_many`` used to come through ``__getattr__`` as an un-awaited coroutine and
wrote nothing.
"""

import asyncio
import inspect

import pytest

import accord
from accord import Setting, SettingsGroup
from accord.config.live import LiveConfig
from accord.config.sync import ABSENT, SYNC_COUNTERPARTS, SyncConfig


class Day(SettingsGroup, category="day"):
    model: str = Setting("bge-m3")
    batch_size: int = Setting(16, ge=1)
    tags: list[str] = Setting([])


GROUPS: list[type[SettingsGroup]] = [Day]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    return url


def _stored(db_url: str) -> dict[str, tuple[object, int | None]]:
    """What another process sees: every setting's value and version, through the async API."""

    async def read() -> dict[str, tuple[object, int | None]]:
        async with await accord.connect(db_url, groups=GROUPS, watch=False, use_env=False) as other:
            return {m.path: (m.value, m.version) for m in other.all("day.")}

    return asyncio.run(read())


def test_every_write_takes_effect(db_url: str) -> None:
    with accord.connect_sync(db_url, groups=GROUPS, use_env=False) as cfg:
        assert cfg.day.model == "bge-m3" and cfg.group("day") is cfg.day
        assert cfg.set("day.batch_size", 32).version == 1
        assert _stored(db_url)["day.batch_size"] == (32, 1)

        metas = cfg.set_many({"day.model": "bge-large", "day.batch_size": 64})
        assert [m.value for m in metas] == ["bge-large", 64]
        assert cfg.day.model == "bge-large" and cfg.get("day.batch_size") == 64
        seen = _stored(db_url)
        assert seen["day.model"] == ("bge-large", 1) and seen["day.batch_size"] == (64, 2)

        cfg.set_input("day.tags", '["a", "b"]')
        assert _stored(db_url)["day.tags"] == (["a", "b"], 1)

        with pytest.raises(accord.ConflictError):
            cfg.set("day.batch_size", 65, expect_version=1)
        revision_of_64 = cfg.meta("day.batch_size").mod_revision
        cfg.set("day.batch_size", 128, expect_version=2)
        assert cfg.rollback("day.batch_size", 1).value == 32
        assert _stored(db_url)["day.batch_size"] == (32, 4)
        assert cfg.rollback("day.batch_size", to_revision=revision_of_64).value == 64
        assert _stored(db_url)["day.batch_size"] == (64, 5)
        assert [h.value for h in cfg.history("day.batch_size", limit=3)] == [64, 32, 128]

        assert cfg.delete("day.tags").source == "default"
        assert _stored(db_url)["day.tags"][0] == []
        cfg.resync()
        cfg.check_once()
        assert cfg.status().revision == cfg.last_revision and not cfg.read_only


def test_close_is_idempotent_and_stops_the_thread(sqlite_url: str) -> None:
    cfg = accord.connect_sync(sqlite_url, groups=GROUPS, use_env=False)
    thread = cfg._thread
    cfg.close()
    assert not thread.is_alive()
    cfg.close()


def test_no_delegation_and_every_async_method_has_a_blocking_counterpart() -> None:
    assert "__getattr__" not in vars(SyncConfig)
    assert not hasattr(SyncConfig, "__getattr__")
    public_async = {
        name
        for name, member in inspect.getmembers(LiveConfig)
        if inspect.iscoroutinefunction(member) and (not name.startswith("_") or name in ("__aenter__", "__aexit__"))
    }
    assert public_async, "LiveConfig should have async methods"
    missing = public_async - SYNC_COUNTERPARTS.keys() - ABSENT.keys()
    assert not missing, f"async LiveConfig methods without a blocking SyncConfig counterpart: {sorted(missing)}"
    for sync_name in SYNC_COUNTERPARTS.values():
        sync_method = getattr(SyncConfig, sync_name)
        assert not inspect.iscoroutinefunction(sync_method), sync_name
    public_sync_reads = {
        name
        for name, member in inspect.getmembers(LiveConfig)
        if not name.startswith("_") and callable(member) and not inspect.iscoroutinefunction(member)
    }
    for name in {"get", "meta", "all", "spec", "status", "on_change", "stored_value"}:
        assert name in public_sync_reads and name in vars(SyncConfig), name


def test_unknown_category_is_an_attribute_error(sqlite_url: str) -> None:
    with accord.connect_sync(sqlite_url, groups=GROUPS, use_env=False) as cfg:
        with pytest.raises(AttributeError, match="day"):
            cfg.group("nope")
        with pytest.raises(AttributeError):
            cfg.nope  # noqa: B018
