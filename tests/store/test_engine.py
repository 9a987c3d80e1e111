"""The store's boundary: what callers ask of the database instead of reading its URL, and driver errors translated."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa

from accord.core.crypto import MASTER_KEY_ENV, MasterKeyError
from accord.store.dialect import async_driver, uses_put_function
from accord.store.engine import create_engine, is_deadlock, retry_deadlocks, write_tx
from accord.store.kv import SqlKVStore

SECRET_URL = "postgresql://accord:hunter2-secret@127.0.0.1:1/nowhere"


async def test_nothing_the_store_shows_carries_the_password() -> None:
    store = SqlKVStore(create_engine(SECRET_URL))  # never connects: these are all local answers
    try:
        for shown in (store.url, store.identity, repr(store)):
            assert "hunter2" not in shown and "127.0.0.1:1/nowhere" in shown
        dsn = store.listen_dsn()
        assert dsn is not None and dsn.startswith("postgresql://") and "hunter2-secret" in dsn  # for LISTEN only
    finally:
        await store.aclose()


async def test_a_postgres_store_listens_where_its_dsn_says_and_sqlite_has_nowhere(pg_url: str, sqlite_url: str) -> None:
    async with await SqlKVStore.from_url(pg_url) as pg, await SqlKVStore.from_url(sqlite_url) as lite:
        assert lite.listen_dsn() is None
        dsn = pg.listen_dsn()
        assert dsn is not None
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            assert await conn.fetchval("SELECT current_database()") == pg_url.rsplit("/", 1)[1]
        finally:
            await conn.close()
        assert uses_put_function(pg.engine) and not uses_put_function(lite.engine)
    assert async_driver("postgres") == "postgresql+asyncpg" and async_driver("sqlite") == "sqlite+aiosqlite"


async def test_two_store_objects_on_one_database_share_identity_and_cipher(sqlite_url: str, tmp_path: Path) -> None:
    async with await SqlKVStore.from_url(sqlite_url) as one, await SqlKVStore.from_url(sqlite_url) as two:
        assert one.identity == two.identity
        sealed = one.cipher().encrypt(b"value", aad=b"k")
        assert two.cipher().decrypt(sealed, aad=b"k") == b"value"
    async with await SqlKVStore.from_url(f"sqlite:///{tmp_path}/elsewhere.db") as other:
        assert other.identity != one.identity


async def test_without_a_master_key_sqlite_keeps_a_key_file_and_postgres_refuses(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MASTER_KEY_ENV)
    async with await SqlKVStore.from_url(sqlite_url) as lite:
        sealed = lite.cipher().encrypt(b"v", aad=b"k")
        assert Path(sqlite_url.removeprefix("sqlite:///")).with_suffix(".key").exists()
        assert lite.cipher().decrypt(sealed, aad=b"k") == b"v"  # loaded anew, same key
    store = SqlKVStore(create_engine(SECRET_URL))
    try:
        with pytest.raises(MasterKeyError, match=MASTER_KEY_ENV) as refused:
            store.cipher()
        assert "hunter2" not in str(refused.value)
    finally:
        await store.aclose()


async def test_a_deadlock_victim_is_recognised_and_rerun(pg_url: str) -> None:
    """Two transactions lock two rows in opposite orders: PostgreSQL aborts one, which is run again."""
    engine = create_engine(pg_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE pair (id int PRIMARY KEY, n int NOT NULL)"))
            await conn.execute(sa.text("INSERT INTO pair VALUES (1, 0), (2, 0)"))
        both_hold_one = asyncio.Barrier(2)
        attempts: list[int] = []
        victims: list[bool] = []

        async def transfer(first: int, second: int) -> None:
            attempts.append(first)
            try:
                async with write_tx(engine) as conn:
                    await conn.execute(sa.text("UPDATE pair SET n = n + 1 WHERE id = :id"), {"id": first})
                    if attempts.count(first) == 1:
                        await both_hold_one.wait()
                    await conn.execute(sa.text("UPDATE pair SET n = n + 1 WHERE id = :id"), {"id": second})
            except sa.exc.DBAPIError as exc:
                victims.append(is_deadlock(exc))
                raise

        await asyncio.gather(retry_deadlocks(lambda: transfer(1, 2)), retry_deadlocks(lambda: transfer(2, 1)))
        assert victims == [True] and len(attempts) == 3
        async with engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT sum(n) FROM pair"))).scalar_one() == 4
    finally:
        await engine.dispose()


async def test_an_error_that_is_no_deadlock_is_not_rerun(pg_url: str) -> None:
    engine = create_engine(pg_url)
    runs = 0

    async def broken() -> None:
        nonlocal runs
        runs += 1
        async with write_tx(engine) as conn:
            await conn.execute(sa.text("SELECT 1/0"))

    try:
        with pytest.raises(sa.exc.DBAPIError) as failure:
            await retry_deadlocks(broken)
        assert runs == 1 and not is_deadlock(failure.value)
    finally:
        await engine.dispose()
