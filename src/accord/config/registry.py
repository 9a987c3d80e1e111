"""The settings a LiveConfig knows: declared groups, or every schema registered in the store."""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
import logging
import pkgutil
import re
from collections.abc import Callable, Iterable, Mapping

from accord.config.settings import SettingsGroup
from accord.config.spec import SettingSpec, StoredSetting
from accord.core.errors import AccordError, UnknownSettingError

log = logging.getLogger("accord.config")
_QUOTED_KEY = re.compile(r"(key )?'(config/[A-Za-z0-9_./-]+)'")


class SettingRegistry:
    """Specs by dotted path and by store key, plus the declared group classes."""

    def __init__(self) -> None:
        self.by_path: dict[str, SettingSpec] = {}
        self.by_key: dict[str, SettingSpec] = {}
        self.groups: dict[str, type[SettingsGroup]] = {}

    @classmethod
    def declared(cls, groups: Iterable[type[SettingsGroup]]) -> SettingRegistry:
        registry = cls()
        for group in groups:
            registry.add_group(group)
        return registry

    @classmethod
    def from_stored(cls, specs: dict[str, str]) -> SettingRegistry:
        registry = cls()
        for path, spec_json in sorted(specs.items()):
            try:
                registry.add(StoredSetting.from_stored(path, spec_json))
            except (ValueError, KeyError, AccordError) as exc:
                log.warning("ignoring unreadable stored schema for %s: %s", path, exc)
        return registry

    def add_group(self, group: type[SettingsGroup]) -> None:
        category = group.__category__
        other = self.groups.get(category)
        if other is not None and other is not group:
            raise AccordError(f"category {category!r} is declared twice: {other.__qualname__} and {group.__qualname__}")
        self.groups[category] = group
        for spec in group.__settings__.values():
            self.add(spec)

    def add(self, spec: SettingSpec) -> None:
        self.by_path[spec.path] = spec
        self.by_key[spec.key] = spec

    def spec(self, path: str, *, visible: Callable[[str], bool] | None = None) -> SettingSpec:
        """The setting at ``path``; a mistyped one is refused with the closest declared path as a hint
        (only among the store keys ``visible`` allows, for a caller that may not see them all)."""
        try:
            return self.by_path[path]
        except KeyError:
            raise unknown_setting(path, self.by_path, visible) from None

    def name_paths(self, text: str) -> str:
        """``text`` with every quoted store key of a known setting (``key 'config/llm/model'``) as its dotted path."""
        return _QUOTED_KEY.sub(lambda m: self._path_of(m.group(2)) or m.group(0), text)

    def _path_of(self, key: str) -> str | None:
        spec = self.by_key.get(key)
        return spec.path if spec is not None else None

    def spec_for_key(self, key: str) -> SettingSpec | None:
        return self.by_key.get(key)

    def categories(self) -> list[str]:
        return sorted({path.split(".", 1)[0] for path in self.by_path})

    def stored_form(self) -> dict[str, str]:
        return {path: spec.to_stored() for path, spec in self.by_path.items()}


def discover(package: str) -> list[type[SettingsGroup]]:
    """Import every ``*_config`` module of ``package`` and return the SettingsGroup classes defined there.

    Adding a file adds settings, with no list to keep in sync.
    """
    try:
        root = importlib.import_module(package)
    except ImportError as exc:
        raise AccordError(f"cannot import settings package {package!r}: {exc}") from exc
    modules = [root]
    for info in pkgutil.iter_modules(getattr(root, "__path__", []), prefix=f"{package}."):
        if info.name.rsplit(".", 1)[-1].endswith("_config"):
            modules.append(importlib.import_module(info.name))
    found: list[type[SettingsGroup]] = []
    for module in modules:
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, SettingsGroup) and obj is not SettingsGroup and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def unknown_setting(
    path: str, known: Mapping[str, SettingSpec], visible: Callable[[str], bool] | None = None
) -> UnknownSettingError:
    """The one "unknown setting" message every entry point gives: the path as JSON, and "did you mean"."""
    candidates = [p for p, spec in known.items() if visible is None or visible(spec.key)]
    close = difflib.get_close_matches(path, candidates, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    return UnknownSettingError(f"unknown setting {json.dumps(path)}: no application has declared it{hint}")
