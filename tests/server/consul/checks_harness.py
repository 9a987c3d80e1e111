"""What the check tests share: a target process whose answers a test flips, and direct access to the store.

Until the catalog routes are merged, a test registers a check the way the catalog will: it writes the
``registry/check/<id>`` (and ``registry/service/<id>``) entries itself, through a Replica on the server's
database and Redis, so the write is announced like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import threading
from pathlib import Path
from typing import Any, ClassVar

import httpx

from accord.registry.kvkeys import encode_segment
from accord.replica.replica import Replica
from accord.store.kv import SqlKVStore
from accord.store.types import PutItem, WriteContext
from tests.harness import HttpProcess, child_env

TARGET_SCRIPT = Path(__file__).with_name("check_target.py")


class CheckTarget(HttpProcess):
    """tests/server/consul/check_target.py as a process: ``url(name)`` answers what ``set(name, ...)`` said."""

    name: ClassVar[str] = "check-target"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, [], child_env())
        self._command = [sys.executable, str(TARGET_SCRIPT), str(self.port)]

    def target(self, name: str) -> str:
        return f"{self.url}/t/{name}"

    def set(self, name: str, code: int, *, counter: bool = False) -> None:
        answer = httpx.put(f"{self.url}/_set/{name}", params={"code": code, "counter": int(counter)}, timeout=10)
        answer.raise_for_status()

    def hits(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.get_json(f"/_hits/{name}")
        return found


def check_doc(
    check_id: str,
    check_type: str,
    *,
    service_id: str = "",
    status: str = "critical",
    agent: bool = True,
    **definition: Any,
) -> dict[str, Any]:
    """A check entry as the catalog writes it (docs/registry.md)."""
    full = {
        "HTTP": "",
        "Method": "",
        "Header": {},
        "Body": "",
        "TCP": "",
        "TTL": None,
        "Interval": None,
        "Timeout": None,
        "DeregisterCriticalServiceAfter": None,
        "TLSSkipVerify": False,
        "DisableRedirects": False,
    } | definition
    return {
        "CheckID": check_id,
        "Name": check_id,
        "Node": "accord",
        "ServiceID": service_id,
        "ServiceName": service_id,
        "ServiceTags": [],
        "Status": status,
        "Output": "",
        "Notes": "",
        "Type": check_type,
        "Definition": full,
        "CriticalSince": None,
        "Agent": agent,
    }


def service_doc(service_id: str) -> dict[str, Any]:
    return {
        "ID": service_id,
        "Service": service_id,
        "Tags": [],
        "Address": "127.0.0.1",
        "Port": 1,
        "Meta": {},
        "TaggedAddresses": {},
        "Weights": {"Passing": 1, "Warning": 1},
        "EnableTagOverride": False,
        "Kind": "",
        "Node": "accord",
    }


def check_key(check_id: str) -> str:
    return "registry/check/" + encode_segment(check_id)


def service_key(service_id: str) -> str:
    return "registry/service/" + encode_segment(service_id)


class Store:
    """Sync access to the server's store for a test: write entries (announced on the bus), read them back."""

    def __init__(self, db_url: str, redis_url: str) -> None:
        self.db_url = db_url
        self.redis_url = redis_url

    def put(self, *docs: tuple[str, dict[str, Any]]) -> None:
        async def write() -> None:
            async with await Replica.from_url(
                self.db_url, self.redis_url, prefixes=("registry/",), actor="test", watch=False
            ) as replica:
                items = [PutItem(key, json.dumps(doc).encode()) for key, doc in docs]
                await replica.put_keys(items, ctx=WriteContext("test", "register"))

        asyncio.run(write())

    def delete(self, key: str) -> None:
        async def remove() -> None:
            async with await Replica.from_url(
                self.db_url, self.redis_url, prefixes=("registry/",), actor="test", watch=False
            ) as replica:
                await replica.delete_key(key, ctx=WriteContext("test", "deregister"))

        asyncio.run(remove())

    def register(self, doc: dict[str, Any]) -> None:
        self.put((check_key(doc["CheckID"]), doc))

    def get(self, key: str) -> dict[str, Any] | None:
        async def read() -> bytes | None:
            async with await SqlKVStore.from_url(self.db_url, migrate=False) as store:
                entry = await store.get(key)
            return None if entry is None else entry.value

        raw = asyncio.run(read())
        return None if raw is None else json.loads(raw)

    def check(self, check_id: str) -> dict[str, Any] | None:
        return self.get(check_key(check_id))

    def status(self, check_id: str) -> str | None:
        doc = self.check(check_id)
        return None if doc is None else str(doc["Status"])

    def history(self, key: str) -> int:
        """How many revisions ``key`` has."""

        async def count() -> int:
            async with await SqlKVStore.from_url(self.db_url, migrate=False) as store:
                return len(await store.history(key))

        return asyncio.run(count())


class Listener:
    """A real TCP listener on loopback that a test can close."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=5)
