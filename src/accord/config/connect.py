"""Start-up: open the store, pick the bus, load the replica's first snapshot, start listening.

How the first snapshot is found when the database is down (the value cache, the snapshot file)
is the replica's business: see ``accord.replica.boot``.
"""

from __future__ import annotations

import getpass
import logging
import socket
from collections.abc import Sequence

from accord.bus.local_bus import DEFAULT_POLL_INTERVAL_S
from accord.bus.redis_url import resolve_redis_url
from accord.config.declarations import register_declarations
from accord.config.live import DEFAULT_CHECK_INTERVAL_S, LiveConfig
from accord.config.registry import SettingRegistry
from accord.config.registry import discover as discover_groups
from accord.config.sealing import require_master_key
from accord.config.settings import SettingsGroup
from accord.core import environ
from accord.core.environ import DEFAULT_START_TIMEOUT_S as DEFAULT_START_TIMEOUT_S
from accord.core.errors import InvalidInputError
from accord.core.keys import CONFIG_PREFIX, PROFILE_PREFIX, SCHEMA_PREFIX
from accord.registry.fleet import HEARTBEAT_S, REMOTE_HEARTBEAT_S, Announcer
from accord.replica.replica import Replica
from accord.store.engine import redact, resolve_db_url
from accord.store.instances import InstanceStore
from accord.store.types import KVStore

log = logging.getLogger("accord.config")
# The stream already carries every revision in order; the safety-net check asks a server (and the database),
# so a fleet of remote clients runs it rarely.
REMOTE_CHECK_INTERVAL_S = 60.0


async def connect(
    db_url: str | None = None,
    redis_url: str | None = None,
    *,
    groups: Sequence[type[SettingsGroup]] | None = None,
    discover: str | Sequence[str] | None = None,
    actor: str | None = None,
    watch: bool = True,
    start_timeout: float | None = None,
    check_interval: float | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL_S,
    snapshot_file: str | None = None,
    use_env: bool = True,
    extra_prefixes: tuple[str, ...] = (),
    replace_schema: bool = False,
    announce: bool | None = None,
    addr: str | Sequence[str] | None = None,
    token: str | None = None,
) -> LiveConfig:
    """Open the shared configuration.

    With ``groups`` or ``discover`` the process declares its settings (and registers their schema
    in the store); with neither it works with every setting any application has registered, as
    the CLI and the server do. A declaration incompatible with the stored one (type changed, rules
    narrowed) raises ``SchemaConflictError`` unless ``replace_schema`` replaces it. URLs default to
    ACCORD_DB_URL / ACCORD_REDIS_URL, then to the embedded SQLite file. A watching process announces
    itself in the fleet view (docs/fleet.md) unless ``announce=False``; with ACCORD_ENV set its
    replica also holds ``env/<profile>/`` (docs/config.md, Environments).

    With ``addr`` (one or several comma-separated server addresses, else ACCORD_ADDR when no database
    URL is given) and ``token`` (else ACCORD_TOKEN) the replica is fed by accord servers instead: no
    database, no Redis, no master key, and only what the token's rules allow (docs/remote.md).
    """
    env = environ.current()
    budget = start_timeout if start_timeout is not None else env.start_timeout
    snapshot_path = snapshot_file or env.snapshot_file
    declared = _declared(groups, discover)
    who = actor or default_actor()
    prefixes = (CONFIG_PREFIX, SCHEMA_PREFIX, *profile_prefixes(env.profile), *extra_prefixes)
    remote = remote_addr(addr, db_url, env)
    instances: InstanceStore | None = None  # the fleet table: the database's, or a server's over HTTP
    if remote is not None:
        if redis_url:
            raise InvalidInputError("a remote client (addr=) holds no Redis connection: drop redis_url")
        from accord.remote.factory import remote_parts  # httpx: loaded by remote clients only

        parts = remote_parts(remote, token or env.token or "", prefixes)
        replica = Replica(
            parts.store,
            parts.propagation,
            actor=who,
            prefixes=prefixes,
            check_interval=REMOTE_CHECK_INTERVAL_S if check_interval is None else check_interval,
            snapshot_file=snapshot_path,
        )
        parts.bus.position = lambda: replica.last_revision  # the stream resumes from what the replica holds
        parts.bus.apply_now = replica.apply_next
        instances = parts.instances  # the client reports what its replica applied; a server writes the row
    else:
        replica = Replica.unstarted(
            resolve_db_url(db_url),
            resolve_redis_url(redis_url),
            prefixes=prefixes,
            actor=who,
            check_interval=DEFAULT_CHECK_INTERVAL_S if check_interval is None else check_interval,
            poll_interval=poll_interval,
            snapshot_file=snapshot_path,
        )

    async def register() -> None:
        if declared is not None:
            forms = SettingRegistry.declared(declared).stored_form()
            await replica.announce(await register_declarations(replica.store, forms, actor=who, replace=replace_schema))

    try:
        first = await replica.first_snapshot(budget_s=budget, prepare=register)
        registry = await _registry(declared, replica.store, first.read_only)
        live = LiveConfig(
            replica, registry, use_env=use_env, profile=env.profile
        )  # subscribes to the replica before it loads
        await live.start(snapshot=first.snapshot, watch=watch, read_only=first.read_only)
        require_master_key(live)  # a missing ACCORD_MASTER_KEY or key file fails here, not at the first secret
        if watch and not first.read_only:
            await replica.wait_connected(min(1.0, budget))
        if (watch if announce is None else announce) and not first.read_only:
            heartbeat = REMOTE_HEARTBEAT_S if instances is not None else HEARTBEAT_S
            announcer = Announcer(replica, instances=instances, heartbeat_s=heartbeat)
            await announcer.start()
            live.adopt_announcer(announcer)
    except BaseException:
        await replica.aclose()
        raise
    return live


def remote_addr(
    addr: str | Sequence[str] | None, db_url: str | None, env: environ.Environ
) -> str | Sequence[str] | None:
    """Remote when ``addr`` is given, or ACCORD_ADDR and ACCORD_TOKEN are set and no database URL is.

    The one place this choice is made: ``connect()`` and the masking proxy's vault both ask it."""
    if addr is not None:
        return addr
    if db_url is None and env.db_url is None and env.addr is not None and env.token is not None:
        return env.addr
    return None


def profile_prefixes(profile: str | None) -> tuple[str, ...]:
    return () if profile is None else (f"{PROFILE_PREFIX}{profile}/",)


def default_actor() -> str:
    """Who writes, for history: ACCORD_ACTOR, else user@host."""
    return environ.current().actor or f"{_user()}@{socket.gethostname()}"


async def _registry(declared: list[type[SettingsGroup]] | None, store: KVStore, read_only: bool) -> SettingRegistry:
    """The declared settings, else every setting registered in the store (none while it is unreachable)."""
    if declared is not None:
        return SettingRegistry.declared(declared)
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
