"""The OS user PostgreSQL runs as when the suite runs as root (postgres refuses to run as root)."""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness.process import ServerError

PG_OS_USER = "postgres"


@dataclass(frozen=True)
class OsUser:
    uid: int
    gid: int
    groups: frozenset[int]

    def popen_options(self) -> dict[str, Any]:
        """What `subprocess.Popen` needs to run a child as this user (supplementary groups included)."""
        return {"user": self.uid, "group": self.gid, "extra_groups": sorted(self.groups)}


def postgres_os_user() -> OsUser | None:
    """None when we are not root: then the servers simply run as the current user."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(PG_OS_USER)
    except KeyError:
        raise ServerError(f"cannot run PostgreSQL as root and OS user {PG_OS_USER!r} does not exist") from None
    return OsUser(entry.pw_uid, entry.pw_gid, frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid)))


def _can_traverse(st: os.stat_result, user: OsUser) -> bool:
    if st.st_uid == user.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in user.groups:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def grant_traverse(path: Path, user: OsUser) -> None:
    """pytest makes its tmp roots 0700; adding only o+x lets postgres reach its data dir without listing anything."""
    for directory in [path, *path.parents]:
        st = directory.stat()
        if _can_traverse(st, user):
            continue
        if st.st_uid != os.geteuid():
            raise ServerError(f"OS user {PG_OS_USER!r} cannot traverse {directory} and we do not own it to fix that")
        directory.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)
