"""A running server sees settings declared after it started (issue 8, item 8): a declaration is a revision
like any change, so it reaches the server over the bus (Redis, or the database's own feed without Redis)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import accord
from tests.config.procs_worker import Knobs, eventually
from tests.server.server_harness import AccordServer


def answer(admin: httpx.Client, path: str) -> tuple[int, object]:
    got = admin.get(f"/api/config/{path}")
    return got.status_code, got.json().get("value") if got.status_code == 200 else None


@pytest.mark.parametrize("with_redis", [True, False], ids=["pg+redis", "pg"])
async def test_a_setting_declared_after_the_server_started_is_served_without_a_restart(
    pg_url: str, redis_url: str, tmp_path: Path, with_redis: bool
) -> None:
    bus = redis_url if with_redis else ""
    server = AccordServer(pg_url, bus, tmp_path / "server").start()
    try:
        with server.admin() as admin:
            status, _ = answer(admin, "knobs.level")
            assert status == 404, "nobody has declared knobs yet"
            async with await accord.connect(pg_url, bus, groups=[Knobs]) as app:  # starts after the server
                await app.set("knobs.level", 42)
                await eventually(lambda: answer(admin, "knobs.level") == (200, 42), "the server to serve knobs.level")
                assert answer(admin, "knobs.name") == (200, "start"), "a declared default, nothing stored"
                put = admin.put("/api/config/knobs.level", json={"value": 43})
                assert put.status_code == 200, put.text
                await eventually(lambda: app.knobs.level == 43, "the application to see the server's write")
    finally:
        server.stop()
