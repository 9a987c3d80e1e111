"""Registering declarations: refuse one that is incompatible with what the store holds, and record who declared.

Two versions of a service can share a store. When the new one changes a setting's type or narrows its
rules, values the old one wrote (or will write) stop being valid for it; that has to be a decision, not
an accident, so it fails unless the caller asks to replace the stored declaration.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from accord.core.errors import SchemaConflictError
from accord.core.times import iso_utc
from accord.store.types import Change, KVStore

__all__ = ["conflicts", "register_declarations"]

# Keywords that only restrict values: a change to one of them narrows, widens or leaves the type alone.
_LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_OTHER = ("pattern", "multipleOf", "format")
_NOTES = ("title", "description", "default", "examples")
_STAMP = ("declared_by", "declared_at")


def same_declaration(stored: str | None, given: str) -> bool:
    """Whether two stored schema texts declare the same setting, whoever stamped them and when."""
    if stored is None:
        return False
    if stored == given:
        return True
    try:
        before, after = json.loads(stored), json.loads(given)
    except ValueError:
        return False
    if not isinstance(before, dict) or not isinstance(after, dict):
        return False
    return _unstamped(before) == _unstamped(after)


def _unstamped(declaration: dict[str, object]) -> dict[str, object]:
    """A stored declaration without who registered it and when: what two registrations must agree on."""
    return {k: v for k, v in declaration.items() if k not in _STAMP}


async def register_declarations(
    store: KVStore, forms: Mapping[str, str], *, actor: str, replace: bool = False
) -> list[Change]:
    """Check ``forms`` (path -> stored spec JSON) against the store, stamp them, and register them; the
    changes returned are the ``schema/`` entries written, for the caller to announce."""
    stored = await store.get_schemas()
    found = [] if replace else conflicts(stored, forms)
    if found:
        raise SchemaConflictError(
            "incompatible declaration(s): " + "; ".join(found) + ". Nothing was registered; connect with "
            "replace_schema=True to replace the stored declaration(s)."
        )
    stamped = {path: _stamped(form, stored.get(path), actor) for path, form in forms.items()}
    return await store.put_schemas(stamped, actor=actor)


def conflicts(stored: Mapping[str, str], declared: Mapping[str, str]) -> list[str]:
    """One message per declared path whose stored declaration it is incompatible with, naming both."""
    found = []
    for path, form in sorted(declared.items()):
        if path not in stored:
            continue
        old, new = json.loads(stored[path]), json.loads(form)
        reasons = _narrowed(old["schema"], new["schema"], "")
        if old.get("secret") and not new.get("secret"):
            reasons.append("it is no longer secret")
        if reasons:
            found.append(f"{path}: {', '.join(reasons)} (stored: {_summary(old)}; declared: {_summary(new)})")
    return found


def _narrowed(old: Any, new: Any, where: str) -> list[str]:
    if not isinstance(old, dict) or not isinstance(new, dict):
        return [] if old == new else [f"the type changed{where}"]
    if _shape(old) != _shape(new):
        return [f"the type changed{where}"]
    reasons = [f"{key}{where} narrowed" for key in _LOWER if _gt(new.get(key), old.get(key))]
    reasons += [f"{key}{where} narrowed" for key in _UPPER if _gt(old.get(key), new.get(key))]
    reasons += [f"{key}{where} changed" for key in _OTHER if key in new and new.get(key) != old.get(key)]
    if "enum" in new and not _values(new["enum"]) >= _values(old.get("enum") or new["enum"]):
        reasons.append(f"enum{where} lost values")
    for key in set(old) & set(new):
        if isinstance(old[key], dict | list) and key not in ("enum", "examples", "default"):
            reasons += _narrowed_each(old[key], new[key], f"{where}.{key}")
    return reasons


def _values(items: Any) -> set[str]:
    return {json.dumps(item, sort_keys=True) for item in items}


def _narrowed_each(old: Any, new: Any, where: str) -> list[str]:
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"the type changed{where}"]
        return [reason for a, b in zip(old, new, strict=True) for reason in _narrowed(a, b, f"{where}[]")]
    return _narrowed(old, new, where)


def _shape(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema without restricting keywords and notes: what the type itself is."""
    skip = {*_LOWER, *_UPPER, *_OTHER, *_NOTES, "enum"}
    return {key: _kind(value) for key, value in schema.items() if key not in skip}


def _kind(value: Any) -> Any:
    if isinstance(value, dict):
        return _shape(value)
    if isinstance(value, list):
        return [_kind(item) for item in value]
    return value


def _gt(a: object, b: object) -> bool:
    """``a`` is a bound stricter than ``b``; a bound where there was none counts as stricter."""
    if a is None:
        return False
    if b is None:
        return True
    return isinstance(a, int | float) and isinstance(b, int | float) and a > b


def _summary(spec: Mapping[str, Any]) -> str:
    stamp = f", by {spec['declared_by']} at {spec['declared_at']}" if spec.get("declared_by") else ""
    return f"{spec.get('python_type') or 'any'} {json.dumps(spec['schema'], sort_keys=True)}{stamp}"


def _stamped(form: str, stored: str | None, actor: str) -> str:
    """The form with who declared it and when; an unchanged declaration keeps its first stamp (no rewrite)."""
    body = json.loads(form)
    if stored is not None:
        before = json.loads(stored)
        if _unstamped(before) == body and before.get("declared_by"):
            return stored
    body |= {"declared_by": actor, "declared_at": iso_utc(datetime.now(UTC), timespec="seconds")}
    return json.dumps(body, sort_keys=True, separators=(",", ":"))
