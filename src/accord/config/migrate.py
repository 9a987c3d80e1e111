"""Importing a legacy ``config.json``: nested sections flattened to dotted paths, old escaping peeled.

Legacy values were often escaped several times over (a string stored as a JSON string of a JSON
string...). The un-escaper runs here, on import, and never on reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accord.config.live import LiveConfig
from accord.config.spec import SettingSpec, failed
from accord.core import codec
from accord.core.errors import AccordError, ConfigFileError, ValidationFailedError
from accord.store.types import WriteContext


@dataclass
class MigrationReport:
    """What an import did, or would do in a dry run."""

    dry_run: bool
    migrated: dict[str, object] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    skipped_unknown: list[str] = field(default_factory=list)
    secret_paths: set[str] = field(default_factory=set)
    not_compared: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with secret values masked."""
        shown = {p: ("****" if p in self.secret_paths else v) for p, v in self.migrated.items()}
        return {
            "dry_run": self.dry_run,
            "migrated": shown,
            "unchanged": self.unchanged,
            "skipped_unknown": self.skipped_unknown,
            "not_compared": self.not_compared,
        }


def load_legacy_file(path: str | Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"cannot read {path}: {exc}") from exc
    return parse_legacy(text, source=str(path))


def parse_legacy(text: str, *, source: str = "config.json") -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigFileError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if not isinstance(data, dict):
        raise ConfigFileError(f"{source} must hold a JSON object at the top level, not {type(data).__name__}")
    return data


async def migrate_legacy(
    live: LiveConfig,
    data: Mapping[str, Any],
    *,
    dry_run: bool = False,
    ctx: WriteContext | None = None,
    revealable: Callable[[str], bool] = lambda _key: True,
) -> MigrationReport:
    """Validate every known value first; then write all changed ones in one transaction, or nothing.

    A secret the caller may not reveal is never compared with the stored one: it always counts as migrated
    (listed in ``not_compared``), so a dry run cannot test a guess.
    """
    report = MigrationReport(dry_run=dry_run)
    errors: list[str] = []
    for path, raw in flatten(data, live.registry.by_path, _env_names(live)).items():
        spec = live.registry.by_path.get(path)
        if spec is None:
            report.skipped_unknown.append(path)
            continue
        try:
            value = _coerce(spec, raw)
        except AccordError as exc:
            errors.append(exc.detail)
            continue
        current = live.meta(path)
        blind = spec.secret and not revealable(spec.key)
        if blind:
            report.not_compared.append(path)
        if not blind and current.source == "stored" and current.value == value:
            report.unchanged.append(path)
        else:
            report.migrated[path] = value
            if spec.secret:
                report.secret_paths.add(path)
    if errors:
        raise ValidationFailedError("nothing was migrated; invalid values: " + "; ".join(errors))
    if not dry_run and report.migrated:
        await live.set_many(report.migrated, ctx=ctx or WriteContext(action="migrate"))
    return report


def flatten(data: Mapping[str, Any], known: Mapping[str, SettingSpec], env_names: Mapping[str, str]) -> dict[str, Any]:
    """Dotted paths for nested sections; a dict stops being descended into where a setting of that path exists."""
    flat: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for name, value in node.items():
            path = f"{prefix}{name}"
            if not prefix and name in env_names:
                flat[env_names[name]] = value
            elif isinstance(value, dict) and path not in known:
                walk(value, f"{path}.")
            else:
                flat[path] = value

    walk(data, "")
    return flat


def _coerce(spec: SettingSpec, raw: object) -> object:
    try:
        return _coerce_value(spec, raw)
    except ValidationFailedError:
        if not spec.secret:
            raise
        raise failed(spec.path, raw, f"not a valid legacy value for {spec.type_name}", secret=True) from None


def _coerce_value(spec: SettingSpec, raw: object) -> object:
    annotation = getattr(spec, "annotation", None)
    if annotation is not None:
        return spec.validate(codec.coerce_legacy(raw, annotation))
    peeled = codec.unescape_legacy(raw)
    if isinstance(peeled, str):
        return spec.parse_input(peeled)
    return spec.validate(peeled)


def _env_names(live: LiveConfig) -> dict[str, str]:
    return {spec.env: path for path, spec in live.registry.by_path.items() if spec.env}
