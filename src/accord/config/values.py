"""Which value a setting has, and why: stored, environment or default."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from accord.config.spec import SettingSpec, show
from accord.core.environ import Environ, current
from accord.store.types import Entry

Source = Literal["profile", "stored", "env", "default"]


@dataclass(frozen=True, slots=True)
class Resolved:
    value: object
    source: Source
    pinned: bool
    shadowed_env: str | None


@dataclass(frozen=True)
class SettingMeta:
    """A setting's current value with where it came from and its place in history."""

    path: str
    value: object
    version: int
    mod_revision: int
    source: Source
    pinned: bool
    shadowed_env: str | None
    secret: bool
    updated_at: datetime | None = None
    updated_by: str | None = None

    def __repr__(self) -> str:
        shown = "****" if self.secret else repr(self.value)
        return (
            f"SettingMeta(path={self.path!r}, value={shown}, version={self.version}, "
            f"mod_revision={self.mod_revision}, source={self.source!r})"
        )


@dataclass(frozen=True)
class SettingChange:
    """Passed to ``on_change`` callbacks. ``old``/``new`` are effective values."""

    path: str
    old: object
    new: object
    version: int
    revision: int
    op: str
    secret: bool

    def __repr__(self) -> str:
        old, new = ("****", "****") if self.secret else (repr(self.old), repr(self.new))
        return f"SettingChange(path={self.path!r}, old={old}, new={new}, revision={self.revision})"


@dataclass(frozen=True)
class HistoryItem:
    revision: int
    version: int
    op: str
    value: object
    actor: str
    at: datetime | None
    secret: bool

    def __repr__(self) -> str:
        shown = "****" if self.secret else repr(self.value)
        return f"HistoryItem(revision={self.revision}, version={self.version}, op={self.op!r}, value={shown})"


def env_override_enabled(environ: Mapping[str, str] | None = None) -> bool:
    return (current() if environ is None else Environ.from_mapping(environ)).env_override


def resolve(
    spec: SettingSpec,
    stored: object | None,
    has_stored: bool,
    env_value: object | None,
    *,
    override: bool,
    profile: tuple[object] | None = None,
) -> Resolved:
    """Stored wins over the environment unless the setting is pinned (``pin_env`` or ACCORD_ENV_OVERRIDE);
    a value stored in the process's environment profile (``profile``, a one-tuple) wins over the base one."""
    env_name = spec.env if env_value is not None else None
    pinned = env_value is not None and (spec.pin_env or override)
    if pinned:
        return Resolved(env_value, "env", True, None)
    if profile is not None:
        return Resolved(profile[0], "profile", False, env_name)
    if has_stored:
        return Resolved(stored, "stored", False, env_name)
    if env_value is not None:
        return Resolved(env_value, "env", False, None)
    return Resolved(spec.default, "default", False, None)


def to_meta(spec: SettingSpec, resolved: Resolved, entry: Entry | None) -> SettingMeta:
    return SettingMeta(
        path=spec.path,
        value=resolved.value,
        version=entry.version if entry else 0,
        mod_revision=entry.mod_revision if entry else 0,
        source=resolved.source,
        pinned=resolved.pinned,
        shadowed_env=resolved.shadowed_env,
        secret=spec.secret,
        updated_at=entry.updated_at if entry else None,
        updated_by=entry.updated_by if entry else None,
    )


__all__ = ["HistoryItem", "Resolved", "SettingChange", "SettingMeta", "Source", "resolve", "show", "to_meta"]
