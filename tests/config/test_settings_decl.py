"""Declaring settings and discovering them, without any store."""

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import accord
from accord import Setting, SettingsGroup


class Retrieval(SettingsGroup, category="retrieval"):
    top_k: int = Setting(10, ge=1, description="results per query")
    model: str = Setting("bge", env="RETRIEVAL_MODEL")
    threshold: float = 0.5
    github_token: str = Setting("")
    signing: str = Setting("", secret=True)
    tokens_per_call: int = Setting(100, secret=False)


def test_group_collects_annotated_settings() -> None:
    settings = Retrieval.__settings__
    assert Retrieval.__category__ == "retrieval"
    assert list(settings) == ["top_k", "model", "threshold", "github_token", "signing", "tokens_per_call"]
    top_k = settings["top_k"]
    assert (top_k.path, top_k.key, top_k.default, top_k.description) == (
        "retrieval.top_k",
        "config/retrieval/top_k",
        10,
        "results per query",
    )
    assert top_k.constraints == {"ge": 1}
    assert settings["model"].env == "RETRIEVAL_MODEL"
    assert (settings["threshold"].default, settings["threshold"].type_name) == (0.5, "float")


def test_category_defaults_to_class_name_and_bad_names_are_refused() -> None:
    class Caching(SettingsGroup):
        ttl: int = Setting(60)

    assert Caching.__category__ == "caching"
    assert Caching.__settings__["ttl"].path == "caching.ttl"
    for bad in ("Bad", "has-dash", "1st", "dotted.name", "x y"):
        with pytest.raises(accord.AccordError, match="category"):
            type("G", (SettingsGroup,), {"__annotations__": {"x": int}, "x": Setting(1)}, category=bad)


def test_invalid_default_is_rejected_at_class_creation() -> None:
    with pytest.raises(accord.ValidationFailedError, match=r"bad_default\.size"):

        class BadDefault(SettingsGroup, category="bad_default"):
            size: int = Setting(0, ge=1)

    with pytest.raises(accord.ValidationFailedError, match=r"bad_type\.name"):

        class BadType(SettingsGroup, category="bad_type"):
            name: str = Setting(3)


def test_annotation_without_default_is_refused() -> None:
    with pytest.raises(accord.AccordError, match="no default"):

        class NoDefault(SettingsGroup, category="no_default"):
            size: int


def test_secret_by_flag_and_by_name() -> None:
    settings = Retrieval.__settings__
    assert settings["github_token"].secret  # by name
    assert settings["signing"].secret  # by flag
    assert not settings["tokens_per_call"].secret  # the explicit flag beats the name
    assert not settings["model"].secret
    text = repr(Retrieval.__new__(Retrieval))
    assert "github_token" in text and "****" in text


def test_validation_uses_type_and_constraints() -> None:
    top_k = Retrieval.__settings__["top_k"]
    assert top_k.validate(5) == 5
    for bad in (0, "5", 5.0, True):
        with pytest.raises(accord.ValidationFailedError, match=r"retrieval\.top_k"):
            top_k.validate(bad)
    assert top_k.parse_input("7") == 7


@pytest.fixture
def settings_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A throwaway package on disk with two *_config modules and a helper that must not be scanned."""
    name = f"decl_pkg_{tmp_path.name.replace('-', '_')}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    modules = {
        "a_config.py": """
            from accord import Setting, SettingsGroup

            class Alpha(SettingsGroup, category="alpha"):
                size: int = Setting(3, ge=1)
        """,
        "b_config.py": """
            from accord import Setting, SettingsGroup

            class Beta(SettingsGroup, category="beta"):
                name: str = Setting("b")

            class BetaExtra(SettingsGroup, category="beta_extra"):
                on: bool = Setting(False)
        """,
        "helpers.py": """
            from accord import Setting, SettingsGroup

            class Hidden(SettingsGroup, category="hidden"):
                x: int = Setting(1)
        """,
    }
    for filename, source in modules.items():
        (package / filename).write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]


def test_discover_finds_only_config_modules(settings_package: str) -> None:
    found = accord.discover(settings_package)
    assert sorted(group.__category__ for group in found) == ["alpha", "beta", "beta_extra"]
    assert f"{settings_package}.helpers" not in sys.modules
    with pytest.raises(accord.AccordError, match="cannot import"):
        accord.discover(f"{settings_package}_missing")


async def test_connect_with_discover(settings_package: str, sqlite_url: str) -> None:
    async with await accord.connect(sqlite_url, "", discover=settings_package, check_interval=0.2) as cfg:
        assert cfg.alpha.size == 3 and cfg.beta.name == "b" and cfg.beta_extra.on is False
        assert sorted(cfg.registry.categories()) == ["alpha", "beta", "beta_extra"]
        with pytest.raises(accord.UnknownSettingError):
            cfg.get("hidden.x")
        await cfg.set("alpha.size", 4)
        assert cfg.alpha.size == 4
        with pytest.raises(accord.ValidationFailedError):
            await cfg.set("alpha.size", 0)
