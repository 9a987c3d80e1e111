"""Start-up: open the store (retrying), pick the bus, load the snapshot, start listening.

A database that stays unreachable is not fatal when there is a complete Redis cache or an
opt-in last-known-good snapshot file: the process starts read-only and degraded, and catches up
once the database is back. Otherwise start-up fails with an error naming what it could not reach.
"""

from __future__ import annotations

import getpass
import logging
import socket
from collections.abc import Sequence

from accord.bus.factory import Propagation, build_propagation, warn_if_redis_missing
from accord.bus.local_bus import DEFAULT_POLL_INTERVAL_S
from accord.bus.redis_conn import REDIS_DOWN_ERRORS, resolve_redis_url
from accord.config import lkg
from accord.config.live import DEFAULT_CHECK_INTERVAL_S, LiveConfig
from accord.config.registry import SettingRegistry
from accord.config.registry import discover as discover_groups
from accord.config.settings import SettingsGroup
from accord.core import environ
from accord.core.environ import DEFAULT_START_TIMEOUT_S as DEFAULT_START_TIMEOUT_S
from accord.core.errors import StoreUnavailableError
from accord.core.keys import CONFIG_PREFIX
from accord.core.retry import retry_for
from accord.store.engine import create_engine, redact, resolve_db_url
from accord.store.kv import SqlKVStore
from accord.store.migrate import upgrade
from accord.store.types import Entry

log = logging.getLogger("accord.config")


async def connect(
    db_url: str | None = None,
    redis_url: str | None = None,
    *,
    groups: Sequence[type[SettingsGroup]] | None = None,
    discover: str | Sequence[str] | None = None,
    actor: str | None = None,
    watch: bool = True,
    start_timeout: float | None = None,
    check_interval: float = DEFAULT_CHECK_INTERVAL_S,
    poll_interval: float = DEFAULT_POLL_INTERVAL_S,
    snapshot_file: str | None = None,
    use_env: bool = True,
    extra_prefixes: tuple[str, ...] = (),
) -> LiveConfig:
    """Open the shared configuration.

    With ``groups`` or ``discover`` the process declares its settings (and registers their schema
    in the store); with neither it works with every setting any application has registered, as
    the CLI and the server do. URLs default to ACCORD_DB_URL / ACCORD_REDIS_URL, then to the
    embedded SQLite file.
    """
    url = resolve_db_url(db_url)
    redis = resolve_redis_url(redis_url)
    env = environ.current()
    budget = start_timeout if start_timeout is not None else env.start_timeout
    snapshot_path = snapshot_file or env.snapshot_file
    declared = _declared(groups, discover)
    store = SqlKVStore(create_engine(url))
    propagation = build_propagation(store, redis, poll_interval=poll_interval)
    try:
        snapshot, read_only = await _open(
            store, propagation, declared, budget, snapshot_path, (CONFIG_PREFIX, *extra_prefixes)
        )
        registry = (
            SettingRegistry.declared(declared) if declared is not None else await _stored_registry(store, read_only)
        )
        live = LiveConfig(
            store,
            propagation,
            registry,
            actor=actor or default_actor(),
            check_interval=check_interval,
            use_env=use_env,
            snapshot_file=snapshot_path,
            extra_prefixes=extra_prefixes,
        )
        await live.start(snapshot=snapshot, watch=watch, read_only=read_only)
        if watch and not read_only:
            await warn_if_redis_missing(propagation, wait_s=min(1.0, budget))
    except BaseException:
        await propagation.bus.aclose()
        await store.aclose()
        raise
    return live


def default_actor() -> str:
    """Who writes, for history: ACCORD_ACTOR, else user@host."""
    return environ.current().actor or f"{_user()}@{socket.gethostname()}"


async def _open(
    store: SqlKVStore,
    propagation: Propagation,
    declared: list[type[SettingsGroup]] | None,
    budget: float,
    snapshot_path: str | None,
    prefixes: tuple[str, ...],
) -> tuple[tuple[int, list[Entry]], bool]:
    async def ready() -> tuple[int, list[Entry]]:
        await upgrade(store.engine)
        if declared is not None:
            await store.put_schemas(SettingRegistry.declared(declared).stored_form())
        return await store.snapshot(prefixes)

    try:
        return await retry_for(
            ready, what=f"database {store.url}", budget_s=budget, retry_on=(StoreUnavailableError,)
        ), False
    except StoreUnavailableError as exc:
        fallback = await _fallback_snapshot(propagation, snapshot_path, prefixes)
        if fallback is None:
            raise StoreUnavailableError(
                f"could not reach database {store.url} within {budget:g}s, and there is no complete Redis cache "
                f"or last-known-good snapshot to start from: {exc.detail}"
            ) from exc
        log.warning("database %s unreachable: starting read-only from %s", store.url, fallback[1])
        return fallback[0], True


async def _fallback_snapshot(
    propagation: Propagation, snapshot_path: str | None, prefixes: tuple[str, ...]
) -> tuple[tuple[int, list[Entry]], str] | None:
    if propagation.cache is not None:
        try:
            cached = await propagation.cache.load()
        except REDIS_DOWN_ERRORS:
            cached = None
        if cached is not None:
            revision, entries = cached
            return (revision, [e for e in entries if e.key.startswith(prefixes)]), "the redis cache"
    if snapshot_path:
        loaded = lkg.read(snapshot_path)
        if loaded is not None:
            return loaded, f"the snapshot file {snapshot_path}"
    return None


async def _stored_registry(store: SqlKVStore, read_only: bool) -> SettingRegistry:
    if read_only:
        return SettingRegistry()
    return SettingRegistry.from_stored(await store.get_schemas())


def _declared(
    groups: Sequence[type[SettingsGroup]] | None, discover: str | Sequence[str] | None
) -> list[type[SettingsGroup]] | None:
    if groups is None and discover is None:
        return None
    found = list(groups or [])
    packages = [discover] if isinstance(discover, str) else list(discover or [])
    for package in packages:
        found.extend(g for g in discover_groups(package) if g not in found)
    return found


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


__all__ = ["connect", "default_actor", "redact"]
