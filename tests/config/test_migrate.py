"""Importing a legacy config.json: flattening, un-escaping, reporting, all-or-nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import accord
from accord import Setting, SettingsGroup
from accord.config.migrate import load_legacy_file, migrate_legacy, parse_legacy


class Rag(SettingsGroup, category="rag"):
    top_k: int = Setting(5, ge=1, env="RAG_TOP_K")
    collection: str = Setting("docs")
    filters: dict[str, str] = Setting({})
    enabled: bool = Setting(True)
    openai_api_key: str = Setting("")


def escaped(value: object, layers: int) -> object:
    for _ in range(layers):
        value = json.dumps(value)
    return value


async def test_multi_escaped_values_are_peeled_and_reported(sqlite_url: str) -> None:
    legacy = {
        "rag": {
            "top_k": escaped(8, 3),
            "collection": escaped("manuals", 5),
            "filters": escaped({"lang": "ko"}, 2),
            "enabled": "false",
            "chunk_size": 512,
        },
        "ui": {"theme": "dark"},
    }
    async with await accord.connect(sqlite_url, "", groups=[Rag], watch=False) as cfg:
        report = await migrate_legacy(cfg, legacy)
        expected = {"rag.top_k": 8, "rag.collection": "manuals", "rag.filters": {"lang": "ko"}, "rag.enabled": False}
        assert report.migrated == expected
        assert sorted(report.skipped_unknown) == ["rag.chunk_size", "ui.theme"]
        assert report.unchanged == []
        assert (cfg.rag.top_k, cfg.rag.collection, cfg.rag.filters, cfg.rag.enabled) == (
            8,
            "manuals",
            {"lang": "ko"},
            False,
        )
        assert cfg.meta("rag.top_k").source == "stored"


async def test_a_value_equal_to_the_default_but_not_stored_is_migrated(sqlite_url: str) -> None:
    async with await accord.connect(sqlite_url, "", groups=[Rag], watch=False) as cfg:
        report = await migrate_legacy(cfg, {"rag": {"enabled": "true"}})
        assert report.migrated == {"rag.enabled": True}
        again = await migrate_legacy(cfg, {"rag": {"enabled": True}})
        assert again.migrated == {} and again.unchanged == ["rag.enabled"]


async def test_dry_run_writes_nothing(sqlite_url: str) -> None:
    async with await accord.connect(sqlite_url, "", groups=[Rag], watch=False) as cfg:
        revision = await cfg.store.current_revision()
        report = await migrate_legacy(cfg, {"rag": {"top_k": "9"}}, dry_run=True)
        assert report.dry_run and report.migrated == {"rag.top_k": 9}
        assert await cfg.store.current_revision() == revision
        assert cfg.meta("rag.top_k").source == "default"


async def test_one_invalid_value_migrates_nothing(sqlite_url: str) -> None:
    async with await accord.connect(sqlite_url, "", groups=[Rag], watch=False) as cfg:
        revision = await cfg.store.current_revision()
        with pytest.raises(accord.ValidationFailedError, match=r"rag\.top_k"):
            await migrate_legacy(cfg, {"rag": {"collection": "kept-out", "top_k": escaped(0, 2)}})
        assert await cfg.store.current_revision() == revision
        assert cfg.rag.collection == "docs"


async def test_env_names_at_top_level_and_secret_masking(sqlite_url: str) -> None:
    async with await accord.connect(sqlite_url, "", groups=[Rag], watch=False) as cfg:
        report = await migrate_legacy(cfg, {"RAG_TOP_K": "12", "rag": {"openai_api_key": "sk-abcdefghijklmnop"}})
        assert report.migrated["rag.top_k"] == 12
        shown = report.as_dict()
        assert shown["migrated"]["rag.openai_api_key"] == "****"
        assert "sk-abcdefghijklmnop" not in json.dumps(shown)


async def test_migration_through_the_stored_schema(sqlite_url: str) -> None:
    """The CLI has no application code: it migrates with the schema the application registered."""
    async with await accord.connect(sqlite_url, "", groups=[Rag], watch=False):
        pass
    async with await accord.connect(sqlite_url, "", watch=False) as admin:
        report = await migrate_legacy(admin, {"rag": {"top_k": escaped(7, 4), "collection": escaped("x", 5)}})
        assert report.migrated == {"rag.top_k": 7, "rag.collection": "x"}
        with pytest.raises(accord.ValidationFailedError, match=r"rag\.top_k"):
            await migrate_legacy(admin, {"rag": {"top_k": '"-3"'}})


@pytest.mark.parametrize(
    ("text", "needle"),
    [("{", "not valid JSON"), ("[1, 2]", "JSON object"), ('{"a": 1,}', "line 1")],
)
def test_malformed_legacy_files(text: str, needle: str, tmp_path: Path) -> None:
    with pytest.raises(accord.ConfigFileError, match=needle):
        parse_legacy(text)
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(accord.ConfigFileError, match=needle):
        load_legacy_file(path)
    with pytest.raises(accord.ConfigFileError, match="cannot read"):
        load_legacy_file(tmp_path / "missing.json")
