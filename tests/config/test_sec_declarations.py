"""A declaration incompatible with the stored one is refused, naming the setting and both declarations."""

from __future__ import annotations

import json

import pytest

import accord
from accord import Setting, SettingsGroup
from accord.core.errors import SchemaConflictError
from tests.cli.cli_helpers import run_cli


class V1(SettingsGroup, category="svc"):
    workers: int = Setting(4, ge=1, le=64)
    name: str = Setting("svc", max_length=20)


class TypeChanged(SettingsGroup, category="svc"):
    workers: str = Setting("4")
    name: str = Setting("svc", max_length=20)


class Narrowed(SettingsGroup, category="svc"):
    workers: int = Setting(4, ge=2, le=64)
    name: str = Setting("svc", max_length=10)


class Widened(SettingsGroup, category="svc"):
    workers: int = Setting(4, ge=0, le=128, description="now documented")
    name: str = Setting("svc", max_length=40)


async def _connect(url: str, group: type[SettingsGroup], actor: str, **options: bool) -> None:
    async with await accord.connect(url, "", groups=[group], watch=False, actor=actor, **options):  # type: ignore[arg-type]
        pass


async def test_incompatible_declarations_are_refused_unless_replaced(sqlite_url: str) -> None:
    await _connect(sqlite_url, V1, "deploy-v1")
    with pytest.raises(SchemaConflictError) as caught:
        await _connect(sqlite_url, TypeChanged, "deploy-v2")
    detail = caught.value.detail
    assert "svc.workers" in detail and "type changed" in detail and "int" in detail and "str" in detail, detail
    assert "deploy-v1" in detail and "replace_schema=True" in detail, detail
    with pytest.raises(SchemaConflictError) as caught:
        await _connect(sqlite_url, Narrowed, "deploy-v2")
    assert "svc.workers" in caught.value.detail and "minimum" in caught.value.detail
    assert "svc.name" in caught.value.detail and "maxLength" in caught.value.detail
    await _connect(sqlite_url, Widened, "deploy-v3")  # widening is compatible
    await _connect(sqlite_url, TypeChanged, "deploy-v4", replace_schema=True)
    await _connect(sqlite_url, TypeChanged, "deploy-v5")  # the same declaration again: stamps stay
    listed = run_cli("config", "list", "--json", db=sqlite_url)
    rows = {row["path"]: row for row in json.loads(listed.stdout)}
    assert rows["svc.workers"]["declared_by"] == "deploy-v4" and rows["svc.workers"]["type"] == "str"
    assert rows["svc.name"]["declared_by"] == "deploy-v4", "an unchanged declaration keeps its stamp"
    assert rows["svc.workers"]["declared_at"].startswith("20")
    table = run_cli("config", "list", db=sqlite_url)
    assert "deploy-v4" in table.stdout, table.stdout
