"""The PostgreSQL write path without a ping on checkout: a connection the server ended is replaced, once."""

from __future__ import annotations

import asyncpg
import pytest

from accord.store.dialect import listen_dsn
from accord.store.kv import SqlKVStore
from tests.config.procs_worker import eventually


async def _terminate_other_backends(store: SqlKVStore) -> int:
    dsn = listen_dsn(store.engine.url)
    assert dsn is not None
    admin = await asyncpg.connect(dsn, ssl=False)
    try:
        query = (
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        pids = [row["pid"] for row in await admin.fetch(query)]
        for pid in pids:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        # pg_terminate_backend only signals: wait until the backends are gone, so their FATAL was sent.
        gone = "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = ANY($1::int[])"
        await eventually(lambda: admin.fetchval(gone, pids), "the terminated backends to exit")
        return len(pids)
    finally:
        await admin.close()


@pytest.mark.parametrize("rounds", [1, 3])
async def test_a_write_on_a_terminated_backend_connection_succeeds_exactly_once(pg_url: str, rounds: int) -> None:
    async with await SqlKVStore.from_url(pg_url) as store:
        await store.put("k/warm", b"0")  # the pool now holds an idle connection
        for n in range(1, rounds + 1):
            assert await _terminate_other_backends(store) >= 1, "the pooled connection was not terminated"
            before = await store.current_revision() if n > 1 else 1
            change = await store.put("k/once", str(n).encode())
            assert change.revision == before + 1
            history = await store.history("k/once")
            assert (history[0].version, history[0].value) == (n, str(n).encode())
            assert len(history) == n, "the retried write was written more than once"
        assert await store.current_revision() == rounds + 1
