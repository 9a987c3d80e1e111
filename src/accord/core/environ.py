"""accord's own environment (``ACCORD_*``), read in one place into one typed, immutable object.

Everything else asks :func:`current` (or :meth:`Environ.from_mapping` for a mapping it was handed),
so each variable has one parser and one default, and a bad value fails naming the variable. The
values of ``ACCORD_MASTER_KEY``, ``ACCORD_MASTER_KEYS_RETIRED`` and ``ACCORD_TOKEN`` never appear
in a message or a repr.

It is read on each call, not cached at import: a process (or a test) that changes its environment
is seen at once, and reading a dozen variables costs microseconds.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from accord.core.errors import EnvironError
from accord.core.flags import FALSE_WORDS, TRUE_WORDS, flag_value

__all__ = [
    "ADDR",
    "DEFAULT_START_TIMEOUT_S",
    "Environ",
    "current",
    "process_environ",
]

DB_URL = "ACCORD_DB_URL"
REDIS_URL = "ACCORD_REDIS_URL"
ADDR = "ACCORD_ADDR"
TOKEN = "ACCORD_TOKEN"
ACTOR = "ACCORD_ACTOR"
START_TIMEOUT = "ACCORD_START_TIMEOUT"
SNAPSHOT_FILE = "ACCORD_SNAPSHOT_FILE"
ENV_OVERRIDE = "ACCORD_ENV_OVERRIDE"
MASTER_KEY = "ACCORD_MASTER_KEY"
MASTER_KEYS_RETIRED = "ACCORD_MASTER_KEYS_RETIRED"
PROXY_REQUIRE_TOKEN = "ACCORD_PROXY_REQUIRE_TOKEN"
DATACENTER = "ACCORD_DATACENTER"
NODE_NAME = "ACCORD_NODE_NAME"
ADVERTISE_ADDR = "ACCORD_ADVERTISE_ADDR"
CHECK_REAP_INTERVAL = "ACCORD_CHECK_REAP_INTERVAL"
SERVICE = "ACCORD_SERVICE"
PROFILE = "ACCORD_ENV"
ENABLE_SCRIPT_CHECKS = "ACCORD_ENABLE_SCRIPT_CHECKS"
SPOOL_DIR = "ACCORD_SPOOL_DIR"
SPOOL_FSYNC = "ACCORD_SPOOL_FSYNC"
SPOOL_MAX_BYTES = "ACCORD_SPOOL_MAX_BYTES"
SPOOL_FSYNC_POLICIES = ("always", "interval", "never")  # accord.events.spool.FsyncPolicy
SECRET_NAMES = frozenset({TOKEN, MASTER_KEY, MASTER_KEYS_RETIRED})

DEFAULT_START_TIMEOUT_S = 30.0
DEFAULT_CHECK_REAP_INTERVAL_S = 30.0  # Consul's CheckReapInterval


@dataclass(frozen=True)
class Environ:
    """The ``ACCORD_*`` variables, parsed. ``None`` means unset (an empty value counts as unset)."""

    db_url: str | None = None
    redis_url: str | None = None
    addr: str | None = None
    token: str | None = field(default=None, repr=False)
    actor: str | None = None
    start_timeout: float = DEFAULT_START_TIMEOUT_S
    snapshot_file: str | None = None
    env_override: bool = False
    master_key: str | None = field(default=None, repr=False)
    master_keys_retired: tuple[str, ...] = field(default=(), repr=False)
    proxy_require_token: bool = False
    datacenter: str = "dc1"  # the Consul datacenter name this deployment answers to
    node_name: str = "accord"  # the one logical Consul node every server replica presents
    advertise_addr: str | None = None  # host:port other replicas and /v1/status/leader name for this process
    check_reap_interval: float = DEFAULT_CHECK_REAP_INTERVAL_S  # seconds between deregister-after sweeps
    service: str | None = None
    profile: str | None = None
    enable_script_checks: bool = False  # accept Consul script checks (Args) over /v1/agent; stored, never run
    spool_dir: str | None = None  # the event pipeline's local spool directory (docs/events.md)
    spool_fsync: str | None = None  # one of SPOOL_FSYNC_POLICIES
    spool_max_bytes: int | None = None  # the spool's size cap

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Environ:
        return cls(
            db_url=env.get(DB_URL) or None,
            redis_url=env.get(REDIS_URL) or None,
            addr=env.get(ADDR, "").strip() or None,
            token=env.get(TOKEN) or None,
            actor=env.get(ACTOR) or None,
            start_timeout=_seconds(env, START_TIMEOUT, DEFAULT_START_TIMEOUT_S),
            snapshot_file=env.get(SNAPSHOT_FILE) or None,
            env_override=_flag(env, ENV_OVERRIDE),
            master_key=env.get(MASTER_KEY) or None,
            master_keys_retired=tuple(p for p in env.get(MASTER_KEYS_RETIRED, "").split(",") if p.strip()),
            proxy_require_token=_flag(env, PROXY_REQUIRE_TOKEN),
            datacenter=env.get(DATACENTER, "").strip() or "dc1",
            node_name=env.get(NODE_NAME, "").strip() or "accord",
            advertise_addr=env.get(ADVERTISE_ADDR, "").strip() or None,
            check_reap_interval=_seconds(env, CHECK_REAP_INTERVAL, DEFAULT_CHECK_REAP_INTERVAL_S),
            service=env.get(SERVICE, "").strip() or None,
            profile=_profile(env),
            enable_script_checks=_flag(env, ENABLE_SCRIPT_CHECKS),
            spool_dir=_directory(env, SPOOL_DIR),
            spool_fsync=_choice(env, SPOOL_FSYNC, SPOOL_FSYNC_POLICIES),
            spool_max_bytes=_byte_count(env, SPOOL_MAX_BYTES),
        )


def current() -> Environ:
    """This process's ``ACCORD_*`` settings, as its environment says now."""
    return Environ.from_mapping(os.environ)


def process_environ() -> dict[str, str]:
    """A copy of the whole environment, for settings that name their own variable (``Setting(env=...)``)."""
    return dict(os.environ)


def export_for_library(name: str, value: str) -> None:
    """Set a variable a third-party library reads only from the environment (prometheus_client's
    PROMETHEUS_MULTIPROC_DIR); the one place accord writes the process environment, never an ACCORD_* one."""
    if name.startswith("ACCORD_"):
        raise ValueError(f"{name}: accord's own settings travel as arguments, not through the environment")
    os.environ[name] = value


def variable(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """One variable a user named on the command line (``--new-key-env NAME``); empty counts as unset."""
    return (os.environ if env is None else env).get(name) or None


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise EnvironError(f"{name}={json.dumps(text)} is not a number of seconds (e.g. 30 or 2.5)", variable=name)
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "")
    if not raw.strip():
        return False
    value = flag_value(raw)
    if value is None:
        words = ", ".join(TRUE_WORDS) + " or " + ", ".join(FALSE_WORDS)
        raise EnvironError(f"{name}={json.dumps(raw)} is not a yes/no flag: use {words}", variable=name)
    return value


def _profile(env: Mapping[str, str]) -> str | None:
    """ACCORD_ENV: one store-key segment naming the environment profile (``production``), or None."""
    text = env.get(PROFILE, "").strip()
    if not text:
        return None
    if not all(c.isalnum() or c in "_.-" for c in text) or text in {".", ".."}:
        raise EnvironError(
            f"{PROFILE}={json.dumps(text)} is not a profile name: use letters, digits, _ . -", variable=PROFILE
        )
    return text


def _directory(env: Mapping[str, str], name: str) -> str | None:
    """A directory path; refused when it names something that exists and is not a directory."""
    text = env.get(name, "").strip()
    if not text:
        return None
    if "\x00" in text:
        raise EnvironError(f"{name} holds a NUL character: not a path", variable=name)
    path = os.path.expanduser(text)
    if os.path.exists(path) and not os.path.isdir(path):
        raise EnvironError(f"{name}={json.dumps(text)} exists and is not a directory", variable=name)
    return path


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    text = env.get(name, "").strip().lower()
    if not text:
        return None
    if text not in choices:
        raise EnvironError(f"{name}={json.dumps(env[name])} is not one of {', '.join(choices)}", variable=name)
    return text


_SIZE = re.compile(r"^(\d+)\s*([kmg]i?b?|b)?$", re.IGNORECASE)
_BYTE_UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3}


def _byte_count(env: Mapping[str, str], name: str) -> int | None:
    """A positive size in bytes, with an optional binary unit: ``268435456``, ``256MiB``, ``1g`` (K/M/G = 1024ⁿ)."""
    text = env.get(name, "").strip()
    if not text:
        return None
    found = _SIZE.match(text)
    value = int(found.group(1)) * _BYTE_UNITS.get((found.group(2) or "b")[0].lower(), 1) if found else 0
    if value <= 0:
        raise EnvironError(
            f"{name}={json.dumps(text)} is not a size in bytes (e.g. 268435456 or 256MiB)", variable=name
        )
    return value
