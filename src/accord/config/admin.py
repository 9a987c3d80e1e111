"""Operations people and tools perform on settings, as JSON-ready rows with secrets masked.

The CLI (directly on the database) and the server (over HTTP) both call these, so a setting
looks the same whichever way it is read. Access control is the caller's: the server passes a
``readable`` filter built from the token's policy.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from typing import Any

from accord.config.history_pages import changes_after
from accord.config.live import LiveConfig
from accord.config.migrate import flatten, migrate_legacy
from accord.config.sealing import require_readable, secrets_problem
from accord.config.spec import SettingSpec, show
from accord.config.values import HistoryItem, SettingChange, SettingMeta
from accord.core.errors import AccordError, CryptoError, NotFoundError, UnknownSettingError, ValidationFailedError
from accord.core.keys import check_profile, key_to_path, profile_key
from accord.core.masking import looks_masked
from accord.store.audit import AuditFilter, AuditRow
from accord.store.instances import instance_store
from accord.store.types import Change, Entry, WriteContext

NOT_COMPARED = "would be written (not compared: no reveal right)"

KeyFilter = Callable[[str], bool]
Row = dict[str, Any]
Rows = list[Row]
SEALED = "$sealed"  # the one key of a sealed secret in a backup: {"$sealed": base64 of the stored blob}


def _everything(_key: str) -> bool:
    return True


class ConfigAdmin:
    def __init__(self, live: LiveConfig) -> None:
        self.live = live

    def categories(self) -> list[str]:
        return self.live.registry.categories()

    def setting_row(self, path: str, *, reveal: bool = False) -> Row:
        require_readable(self.live, self.live.spec(path))  # a secret that cannot be opened is an error, not its default
        return describe(self.live.meta(path), self.live.spec(path), reveal=reveal)

    def secrets_problem(self) -> str | None:
        """Why stored secrets cannot be opened (a lost or wrong master key), for /readyz; None when they can."""
        return secrets_problem(self.live)

    def settings(self, *, prefix: str = "", category: str | None = None, readable: KeyFilter = _everything) -> Rows:
        if category is not None and category not in self.categories():
            raise UnknownSettingError(f"unknown category {json.dumps(category)}")
        wanted = f"{category}." if category is not None else prefix
        specs = [self.live.spec(meta.path) for meta in self.live.all(wanted)]
        for spec in specs:
            if readable(spec.key):
                require_readable(self.live, spec)
        return [
            describe(meta, self.live.spec(meta.path))
            for meta in self.live.all(wanted)
            if readable(self.live.spec(meta.path).key)
        ]

    async def set(
        self, path: str, value: object, *, expect_version: int | None = None, ctx: WriteContext | None = None
    ) -> Row:
        old = self.live.meta(path)
        new = await self.live.set(path, value, expect_version=expect_version, ctx=ctx)
        return self._change_row(path, old, new)

    async def set_input(
        self, path: str, raw: str, *, expect_version: int | None = None, ctx: WriteContext | None = None
    ) -> Row:
        return await self.set(path, self.live.spec(path).parse_input(raw), expect_version=expect_version, ctx=ctx)

    async def set_profile_input(self, profile: str, path: str, raw: str, *, ctx: WriteContext | None = None) -> Row:
        """Store ``raw`` (parsed and validated like the base setting, sealed the same) in ``profile``'s layer."""
        check_profile(profile)
        spec = self.live.spec(path)
        change = await self.live.set_profile(profile, path, spec.parse_input(raw), ctx=ctx)
        row = self.profile_row(profile, path, found=await self._profile_entry(profile, path))
        return {**row, "revision": change.revision}

    async def unset_profile(self, profile: str, path: str, *, ctx: WriteContext | None = None) -> Row:
        """Remove ``path``'s value from ``profile``'s layer; the answer shows (masked) what was removed."""
        check_profile(profile)
        removed = self.profile_row(profile, path, found=await self._profile_entry(profile, path))
        change = await self.live.delete_profile(profile, path, ctx=ctx)
        return {**removed, "source": "removed", "mod_revision": change.revision, "revision": change.revision}

    async def profile_setting(self, profile: str, path: str, *, reveal: bool = False) -> Row:
        """``path``'s value in ``profile``'s layer (read from the store: a server serves every profile)."""
        check_profile(profile)
        return self.profile_row(profile, path, found=await self._profile_entry(profile, path), reveal=reveal)

    async def _profile_entry(self, profile: str, path: str) -> Entry | None:
        return await self.live.store.get(profile_key(profile, self.live.spec(path).key))

    def profile_row(self, profile: str, path: str, *, found: Entry | None, reveal: bool = False) -> Row:
        spec = self.live.spec(path)
        row: Row = {"path": path, "env": profile, "key": profile_key(profile, spec.key), "secret": spec.secret}
        if found is None:
            raise NotFoundError(f"{path} has no value in environment profile {profile!r}")
        value = spec.decode(self.live.stored_text(spec, found.value, secret=found.secret, key=found.key))
        return {
            **row,
            "value": value if reveal else show(spec, value),
            "source": "profile",
            "version": found.version,
            "mod_revision": found.mod_revision,
        }

    async def wait_applied(self, timeout_s: float) -> Row:
        """Wait until every live instance has applied this process's last revision (NotAppliedError names the rest)."""
        from accord.registry.fleet import wait_applied

        revision = self.live.last_revision
        await wait_applied(instance_store(self.live.store), revision, timeout_s)
        return {"applied_revision": revision}

    async def applied(self, row: Row, wait_s: float | None) -> Row:
        """``row`` at once, or with ``wait_s`` once every live instance has applied it (plus the revision)."""
        return row if wait_s is None else {**row, **await self.wait_applied(wait_s)}

    async def instances(self) -> Rows:
        from accord.registry.fleet import list_instances

        revision = await self.live.store.current_revision()
        return [view.as_dict() for view in await list_instances(instance_store(self.live.store), revision)]

    async def unset(self, path: str, *, expect_version: int | None = None, ctx: WriteContext | None = None) -> Row:
        old = self.live.meta(path)
        if old.version == 0:
            raise NotFoundError(f"{path} has no stored value to remove")
        new = await self.live.delete(path, expect_version=expect_version, ctx=ctx)
        return self._change_row(path, old, new)

    async def rollback(
        self,
        path: str,
        to_version: int | None = None,
        *,
        to_revision: int | None = None,
        ctx: WriteContext | None = None,
    ) -> Row:
        old = self.live.meta(path)
        new = await self.live.rollback(path, to_version, to_revision=to_revision, ctx=ctx)
        return self._change_row(path, old, new)

    async def history(self, path: str, *, limit: int | None = None, reveal: bool = False) -> Rows:
        spec = self.live.spec(path)
        return [history_row(item, spec, reveal=reveal) for item in await self.live.history(path, limit=limit)]

    async def diff(
        self, from_revision: int, to_revision: int | None = None, *, readable: KeyFilter = _everything
    ) -> Row:
        """Settings whose stored value differs between two revisions, with both values (masked)."""
        to = to_revision if to_revision is not None else self.live.last_revision
        if from_revision < 0 or to < from_revision:
            raise ValidationFailedError(f"invalid revision range {from_revision}..{to}: need 0 <= from <= to")
        last: dict[str, Change] = {}
        async for change in changes_after(self.live.store, from_revision, upto=to):
            last[change.key] = change
        rows = []
        for key, change in sorted(last.items()):
            path = key_to_path(key)
            if path is None or path not in self.live.registry.by_path or not readable(key):
                continue
            spec = self.live.spec(path)
            before = await self.live.store.value_at(key, from_revision)
            old, new = self._decoded(spec, before), self._decoded(spec, change)
            rows.append({"path": path, "old": old, "new": new, "revision": change.revision})
        return {"from_revision": from_revision, "to_revision": to, "changes": rows}

    async def export(
        self, *, readable: KeyFilter = _everything, sealed: bool = False
    ) -> AsyncIterator[tuple[str, object]]:
        """Stored values by path, one at a time: secrets masked, or with ``sealed`` their sealed bytes.

        A sealed secret is ``{"$sealed": base64}``, the blob exactly as stored (AES-GCM, bound to its key),
        so a backup restores into a fresh store that has the same master key and reveals nothing without it.
        """
        for meta in self.live.all():
            spec = self.live.spec(meta.path)
            entry = self.live.entry(spec.key)
            if not readable(spec.key) or entry is None:
                continue
            if sealed and entry.secret:
                yield meta.path, {SEALED: base64.b64encode(entry.value).decode()}
            else:
                yield meta.path, show(spec, self.live.stored_value(meta.path))

    async def import_values(
        self,
        values: Mapping[str, object],
        *,
        dry_run: bool,
        ctx: WriteContext | None = None,
        revealable: KeyFilter = _everything,
    ) -> Row:
        """Validate everything, then write every changed value in one transaction (or report, on a dry run).

        For a caller who may not reveal a secret, a given secret always counts as a change, so a dry run
        cannot be used to test guesses against the stored one.
        """
        changed: dict[str, object] = {}
        errors: list[str] = []
        rows = []
        for path, value in values.items():
            try:
                outcome = self._import_one(path, value, revealable)
            except (UnknownSettingError, ValidationFailedError, CryptoError) as exc:
                errors.append(exc.detail)
                continue
            if outcome is not None:
                changed[path], row = outcome
                rows.append(row)
        if errors:
            raise ValidationFailedError("nothing was imported; " + "; ".join(errors))
        if changed and not dry_run:
            await self.live.set_many(changed, ctx=ctx)
        return {"dry_run": dry_run, "changes": rows, "unchanged": len(values) - len(changed)}

    def _import_one(self, path: str, value: object, revealable: KeyFilter) -> tuple[object, Row] | None:
        """The value to write and its report row, or None when the stored value stays."""
        spec = self.live.spec(path)
        stored = self.live.entry(spec.key)
        if spec.secret and _is_sealed(value):
            value = self._unseal(spec, value)
        elif spec.secret and stored is not None and value == show(spec, self.live.stored_value(path)):
            return None  # the masked form an export writes: keep the stored secret, do not overwrite it with ****
        elif spec.secret and looks_masked(value):
            raise ValidationFailedError(
                f"{path}: {value} is a masked secret, not a secret (it does not match the stored one); "
                "export with --sealed for a backup that restores secrets"
            )
        valid = spec.validate(value)
        current = self.live.meta(path)
        blind = spec.secret and not revealable(spec.key)
        if blind:  # the same answer whether the guess matches the stored secret or not
            return valid, {"path": path, "old": show(spec, current.value), "new": "****", "note": NOT_COMPARED}
        if current.source == "stored" and current.value == valid:
            return None
        return valid, {"path": path, "old": show(spec, current.value), "new": show(spec, valid), "note": None}

    def _unseal(self, spec: SettingSpec, value: object) -> object:
        assert isinstance(value, dict)
        try:
            blob = base64.b64decode(str(value[SEALED]), validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailedError(f"{spec.path}: the sealed value is not base64") from None
        return spec.decode(self.live.stored_text(spec, blob, secret=True))

    def migration_paths(self, data: Mapping[str, Any]) -> list[str]:
        """Every known setting a legacy config.json names, changed or not: what a caller must be allowed to write."""
        known = self.live.registry.by_path
        env_names = {spec.env: path for path, spec in known.items() if spec.env}
        return [path for path in flatten(data, known, env_names) if path in known]

    async def migrate(
        self,
        data: Mapping[str, Any],
        *,
        dry_run: bool,
        ctx: WriteContext | None = None,
        revealable: KeyFilter = _everything,
    ) -> Row:
        """Like ``import_values``: for a caller who may not reveal a secret, a given secret is never compared."""
        return (await migrate_legacy(self.live, data, dry_run=dry_run, ctx=ctx, revealable=revealable)).as_dict()

    def change_event(self, change: Change) -> Row | None:
        """A stored change as a watch event, or None when it is not a known setting."""
        path = key_to_path(change.key)
        if path is None or path not in self.live.registry.by_path:
            return None
        spec = self.live.spec(path)
        value = None if change.op == "delete" else self._shown(change.key, change)
        effective = show(spec, spec.default) if change.op == "delete" else value
        return {
            "path": path,
            "op": change.op,
            "value": value,
            "version": change.version,
            "revision": change.revision,
            "effective": effective,
        }

    def setting_change_event(self, change: SettingChange) -> Row:
        spec = self.live.spec(change.path)
        value = None if change.op == "delete" else show(spec, self.live.stored_value(change.path))
        return {
            "path": change.path,
            "op": change.op,
            "value": value,
            "version": change.version,
            "revision": change.revision,
            "effective": show(spec, change.new),
        }

    async def audit(self, flt: AuditFilter, *, readable: KeyFilter = _everything) -> Rows:
        """Who changed what and when, with old and new values masked (token records summarised).

        ``flt.limit`` counts rows the caller may read: history is read in pages until enough pass.
        """
        rows: Rows = []
        async for change, prev_value, prev_secret in self._audit_pages(flt):
            if readable(change.key):
                rows.append(self._audit_row(change, prev_value, prev_secret))
                if len(rows) >= flt.limit:
                    break
        return rows

    async def _audit_pages(self, flt: AuditFilter) -> AsyncIterator[AuditRow]:
        """Every matching row, newest first, a page at a time; a page never splits one revision."""
        before, size = flt.before_revision, max(flt.limit, 100)
        while True:
            page = await self.live.store.audit(replace(flt, before_revision=before, limit=size))
            if len(page) < size:
                for row in page:
                    yield row
                return
            last = page[-1][0].revision
            whole = [row for row in page if row[0].revision != last]
            if not whole:
                size *= 2  # one revision fills the page: read a larger one
                continue
            for row in whole:
                yield row
            before = last + 1

    def _audit_row(self, change: Change, prev_value: bytes | None, prev_secret: bool) -> Row:
        before = Change(0, change.key, "put", 0, prev_value, prev_secret) if prev_value is not None else None
        return {
            "revision": change.revision,
            "at": change.at,
            "actor": change.actor,
            "action": change.action,
            "request_id": change.request_id,
            "key": change.key,
            "path": key_to_path(change.key),
            "op": change.op,
            "old": self._shown(change.key, before),
            "new": self._shown(change.key, change),
        }

    def _shown(self, key: str, change: Change | None) -> object:
        if change is None or change.op == "delete" or change.value is None:
            return None
        path = key_to_path(key)
        if path is not None and path in self.live.registry.by_path:
            try:
                return self._decoded(self.live.spec(path), change)
            except AccordError:
                return "<undecodable>"
        if key.startswith("acl/"):
            return _token_summary(change.value)
        return "****" if change.secret else f"<{len(change.value)} bytes>"

    def _decoded(self, spec: SettingSpec, change: Change | None) -> object:
        if change is None or change.op == "delete" or change.value is None:
            return None
        return show(spec, spec.decode(self.live.stored_text(spec, change.value, secret=change.secret)))

    def _change_row(self, path: str, old: SettingMeta, new: SettingMeta) -> Row:
        spec = self.live.spec(path)
        return {**describe(new, spec), "old": show(spec, old.value), "new": show(spec, new.value)}


def _is_sealed(value: object) -> bool:
    return isinstance(value, dict) and set(value) == {SEALED} and isinstance(value[SEALED], str)


def describe(meta: SettingMeta, spec: SettingSpec, *, reveal: bool = False) -> Row:
    return {
        "path": meta.path,
        "value": meta.value if reveal else show(spec, meta.value),
        "type": spec.type_name,
        "default": show(spec, spec.default),
        "source": meta.source,
        "pinned": meta.pinned,
        "shadowed_env": meta.shadowed_env,
        "version": meta.version,
        "mod_revision": meta.mod_revision,
        "secret": meta.secret,
        "description": spec.description,
        "declared_by": getattr(spec, "declared_by", None),
        "declared_at": getattr(spec, "declared_at", None),
    }


def history_row(item: HistoryItem, spec: SettingSpec, *, reveal: bool = False) -> Row:
    value = None if item.op == "delete" else (item.value if reveal else show(spec, item.value))
    return {
        "revision": item.revision,
        "version": item.version,
        "op": item.op,
        "value": value,
        "actor": item.actor,
        "at": item.at,
    }


def _token_summary(raw: bytes) -> object:
    """What a token record grants (its rules and reveal right), never its hash."""
    try:
        policy = json.loads(raw)["policy"]
        return {"rules": list(policy["rules"]), "reveal_secrets": bool(policy.get("reveal_secrets"))}
    except (ValueError, KeyError, TypeError):
        return "<token record>"
