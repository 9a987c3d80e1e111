"""Retention (idle expiry, with Redis as the record of recent use) and settings shared through the config store.

Idleness is simulated by moving last-use timestamps back (in the database and in Redis), so no test
depends on how long the machine takes to do something.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis
import sqlalchemy as sa

import accord
from accord.store.deployment import redis_keys_of
from accord.store.engine import read_tx, write_tx
from accord.vault import Vault, VaultSettings
from accord.vault._sql import tables as t
from tests.harness import RedisServer
from tests.vault.vault_helpers import VaultBackend

TTL = 600


@pytest.fixture
async def short_lived(backend: VaultBackend) -> AsyncIterator[Vault]:
    async with await Vault.connect(backend.db_url, backend.redis_url, mapping_ttl_seconds=TTL, sweep=False) as vault:
        yield vault


async def _age(vault: Vault, backend: VaultBackend, token: str, seconds: float) -> None:
    """Pretend ``token`` was last used ``seconds`` ago, in the database and (if any) in Redis."""
    async with write_tx(vault.engine) as conn:
        await conn.execute(
            sa.update(t.mapping)
            .where(t.mapping.c.token == token)
            .values(last_used_at=datetime.now(UTC) - timedelta(seconds=seconds))
        )
    if backend.redis_url:
        used_hash = (await redis_keys_of(vault.engine)).vault_scope("default")[2]
        with redis.Redis.from_url(backend.redis_url) as client:
            client.hset(used_hash, token, int(time.time() - seconds))


async def _last_used(vault: Vault, token: str) -> datetime:
    async with read_tx(vault.engine) as conn:
        value = await conn.scalar(sa.select(t.mapping.c.last_used_at).where(t.mapping.c.token == token))
    assert value is not None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def test_an_idle_mapping_expires_and_its_token_is_left_alone(short_lived: Vault, backend: VaultBackend) -> None:
    vault = short_lived
    old = await vault.mask("old@example.com")
    kept = await vault.mask("kept@example.com")
    await _age(vault, backend, "EMAIL_001", TTL + 60)
    assert await vault.expire_idle() == 1
    assert await vault.unmask("EMAIL_001 and EMAIL_002") == "EMAIL_001 and kept@example.com"
    stats = await vault.stats()
    assert (stats.expired, stats.unmask_expired, stats.unmask_misses) == (1, 1, 1)
    assert stats.mappings == {"EMAIL": 1}
    again = await vault.mask("old@example.com")
    assert again.text == "EMAIL_003", "an expired original starts over with a new number"
    assert await vault.unmask(f"{old.text} {again.text} {kept.text}") == ("EMAIL_001 old@example.com kept@example.com")
    async with read_tx(vault.engine) as conn:
        tombstone = (await conn.execute(sa.select(t.mapping).where(t.mapping.c.token == "EMAIL_001"))).one()
    assert tombstone.original is None and tombstone.fingerprint is None, "expiry erases the original"


async def test_recent_use_in_redis_keeps_a_mapping_alive(pg_url: str, redis_url: str, master_key: str) -> None:
    backend = VaultBackend("postgres_redis", pg_url, redis_url)
    async with await Vault.connect(pg_url, redis_url, mapping_ttl_seconds=TTL, sweep=False) as vault:
        await vault.mask("busy@example.com")
        await _age(vault, backend, "EMAIL_001", TTL + 60)
        assert await vault.unmask("EMAIL_001") == "busy@example.com"  # a use Redis records, not the database
        assert await vault.expire_idle() == 0
        assert await _last_used(vault, "EMAIL_001") > datetime.now(UTC) - timedelta(seconds=60), "database caught up"


async def test_masking_an_idle_mapping_revives_it_instead_of_racing_expiry(
    short_lived: Vault, backend: VaultBackend
) -> None:
    vault = short_lived
    await vault.mask("idle@example.com")
    await _age(vault, backend, "EMAIL_001", TTL + 60)
    assert (await vault.mask("idle@example.com")).text == "EMAIL_001"
    assert await vault.expire_idle() == 0
    assert await vault.unmask("EMAIL_001") == "idle@example.com"


async def test_no_expiry_while_redis_is_configured_but_down(
    pg_url: str, own_redis: RedisServer, master_key: str
) -> None:
    backend = VaultBackend("postgres_redis", pg_url, own_redis.url)
    async with await Vault.connect(pg_url, own_redis.url, mapping_ttl_seconds=TTL, sweep=False) as vault:
        await vault.mask("x@example.com")
        await _age(vault, backend, "EMAIL_001", TTL + 60)
        own_redis.kill()
        assert await vault.expire_idle() == 0, "Redis alone knows about recent uses"
        assert await vault.unmask("EMAIL_001") == "x@example.com", "the database answers meanwhile"
        own_redis.start()


async def test_zero_ttl_keeps_mappings_forever(sqlite_url: str) -> None:
    backend = VaultBackend("sqlite", sqlite_url, "")
    async with await Vault.connect(sqlite_url, "", mapping_ttl_seconds=0, sweep=False) as vault:
        await vault.mask("forever@example.com")
        await _age(vault, backend, "EMAIL_001", 10 * 365 * 86400)
        assert await vault.expire_idle() == 0
        assert await vault.unmask("EMAIL_001") == "forever@example.com"


async def test_the_background_sweeper_expires_idle_mappings(sqlite_url: str) -> None:
    backend = VaultBackend("sqlite", sqlite_url, "")
    async with await Vault.connect(sqlite_url, "", mapping_ttl_seconds=5) as vault:
        await vault.mask("gone@example.com")
        await _age(vault, backend, "EMAIL_001", 60)
        await _until(lambda: vault.stats(), lambda stats: stats.expired == 1)
        assert await vault.unmask("EMAIL_001") == "EMAIL_001"


async def test_patterns_and_retention_follow_the_shared_config(sqlite_url: str) -> None:
    options = {"groups": [VaultSettings], "check_interval": 0.2, "poll_interval": 0.02}
    async with (
        await accord.connect(sqlite_url, "", **options) as cfg_a,  # type: ignore[arg-type]
        await accord.connect(sqlite_url, "", **options) as cfg_b,  # type: ignore[arg-type]
        await Vault.connect(live=cfg_a, sweep=False) as vault_a,
        await Vault.connect(live=cfg_b, sweep=False) as vault_b,
    ):
        assert (await vault_b.mask("ticket TCK-12345")).text == "ticket TCK-12345"
        await cfg_a.set("vault.custom_patterns", {"TICKET": r"TCK-\d{5}\b"})  # a broken entry is refused now
        await cfg_a.set("vault.mapping_ttl_seconds", 120)
        await _until(lambda: vault_b.mask("ticket TCK-12345"), lambda result: result.text == "ticket TICKET_001")
        await _until(lambda: _value(vault_b.mapping_ttl_seconds), lambda ttl: ttl == 120)
        assert (await vault_a.mask("TCK-12345 ops@example.com")).text == "TICKET_001 EMAIL_001"
        assert await vault_a.unmask("TICKET_001") == "TCK-12345"
        await cfg_b.set("vault.custom_patterns", {})
        await _until(lambda: vault_a.mask("TCK-99999"), lambda result: result.text == "TCK-99999")
        assert await vault_a.unmask("TICKET_001") == "TCK-12345", "tokens of a removed pattern still unmask"


async def _value(value: object) -> object:
    return value


async def _until(probe: Callable[[], object], accept: Callable[[object], bool]) -> object:
    """Poll ``probe`` (a coroutine factory) until ``accept`` says yes, with a generous deadline."""
    async with asyncio.timeout(30):
        while True:
            result = await probe()  # type: ignore[misc]
            if accept(result):
                return result
            await asyncio.sleep(0.05)
