"""Key rotation in the library: config secrets and vault originals resealed together, and a dry run that
counts exactly what the real run reseals. Runs on PostgreSQL + Redis, where Redis holds copies of old blobs."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

import accord
from accord.core.crypto import Cipher, MasterKeyError, default_key_id, generate_key, load_keyring, write_key_file
from accord.keys.rotate import RotationReport, rotate_database
from accord.store import tables as kv_tables
from accord.store.engine import create_engine, read_tx
from accord.vault import Vault
from accord.vault._sql import tables as vault_tables
from tests.cli.cli_helpers import Llm

FIRST = "sk-live-first-secret-1111"
SECOND = "sk-live-second-secret-2222"
EARLY = "Restart arn:aws:eks:us-east-1:123456789012:cluster/prod and mail ops@example.com"
LATE = "Then page lead@example.com about arn:aws:iam::123456789012:role/Deployer from 10.20.30.40"


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def use_keys(monkeypatch: pytest.MonkeyPatch, active: bytes, *retired: bytes) -> Cipher:
    """What every process is started with: ACCORD_MASTER_KEY plus the decrypt-only retired keys."""
    monkeypatch.setenv("ACCORD_MASTER_KEY", b64(active))
    monkeypatch.setenv("ACCORD_MASTER_KEYS_RETIRED", ",".join(b64(key) for key in retired))
    return Cipher.from_keys([active, *retired])


async def blob_key_ids(db_url: str) -> dict[str, set[str]]:
    """The key ids of every sealed blob, per capability, read straight from the tables."""
    engine = create_engine(db_url)
    kv, history, mapping = kv_tables.kv, kv_tables.kv_history, vault_tables.mapping
    try:
        async with read_tx(engine) as conn:
            config = [*(await conn.execute(sa.select(kv.c.value).where(kv.c.secret))).scalars()]
            config += (await conn.execute(sa.select(history.c.value).where(history.c.secret))).scalars().all()
            vault = (await conn.execute(sa.select(mapping.c.original).where(mapping.c.original.is_not(None)))).all()
    finally:
        await engine.dispose()
    return {
        "config": {Cipher.key_id_of(bytes(blob)) for blob in config if blob is not None},
        "vault": {Cipher.key_id_of(bytes(row[0])) for row in vault},
    }


async def store_secret(db_url: str, value: str) -> None:
    async with await accord.connect(db_url, "", groups=[Llm], watch=False) as cfg:
        await cfg.set("llm.api_key", value)


async def mask(db_url: str, redis_url: str, text: str) -> str:
    async with await Vault.connect(db_url, redis_url, sweep=False) as vault:
        return (await vault.mask(text)).text


def vault_hashes(redis_url: str) -> int:
    with redis.Redis.from_url(redis_url) as client:
        return sum(1 for _ in client.scan_iter(match="accord:{*:vault}:*"))


async def test_rotate_twice_delete_the_retired_key_and_everything_still_opens(
    pg_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    k0, k1, k2 = generate_key(), generate_key(), generate_key()
    use_keys(monkeypatch, k0)
    await store_secret(pg_url, FIRST)
    early = await mask(pg_url, redis_url, EARLY)  # the first vault pins k0 as its fingerprint key
    assert vault_hashes(redis_url) > 0, "Redis holds copies of the sealed originals"

    first = await rotate_database(pg_url, Cipher.from_keys([k1, k0]), dry_run=False, redis_url=redis_url)
    assert first.count("vault").resealed == {"mappings": 2}
    assert first.count("config").total == 2  # the current value and its history row
    assert first.kept_key_ids == [default_key_id(k0)], "the pinned fingerprint key is never to be deleted"
    assert first.caches_invalidated == ["config", "vault"] and vault_hashes(redis_url) == 0

    use_keys(monkeypatch, k1, k0)  # the instances restart with k1 active
    await store_secret(pg_url, SECOND)
    late = await mask(pg_url, redis_url, LATE)
    assert await blob_key_ids(pg_url) == {"config": {default_key_id(k1)}, "vault": {default_key_id(k1)}}

    second = await rotate_database(pg_url, Cipher.from_keys([k2, k1, k0]), dry_run=False, redis_url=redis_url)
    assert second.count("vault").resealed == {"mappings": 5} and second.count("config").total == 3
    assert await blob_key_ids(pg_url) == {"config": {default_key_id(k2)}, "vault": {default_key_id(k2)}}

    use_keys(monkeypatch, k2, k0)  # k1 is deleted everywhere; k0 stays, as the report said
    async with await Vault.connect(pg_url, redis_url, sweep=False) as vault:
        assert await vault.unmask(early) == EARLY
        assert await vault.unmask(late) == LATE
        assert (await vault.mask(EARLY)).text == early, "an original keeps its token across rotations"
        assert await vault.unmask(early) == EARLY, "and unmasks through the rebuilt Redis copies too"
    async with await accord.connect(pg_url, redis_url, groups=[Llm], watch=False) as cfg:
        assert cfg.get("llm.api_key") == SECOND
        history = await cfg.history("llm.api_key")
        assert [entry.value for entry in history] == [SECOND, FIRST]

    use_keys(monkeypatch, k2)  # without the pinned key the vault refuses to open, rather than mis-tokenise
    with pytest.raises(MasterKeyError, match="fingerprints were made with key"):
        await Vault.connect(pg_url, redis_url, sweep=False)


def counts(report: RotationReport) -> dict[str, dict[str, int]]:
    return {count.capability: dict(count.resealed) for count in report.capabilities}


async def test_the_dry_run_counts_exactly_what_the_real_run_reseals(
    pg_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = generate_key(), generate_key()
    use_keys(monkeypatch, old)
    await store_secret(pg_url, FIRST)
    await mask(pg_url, redis_url, EARLY)
    use_keys(monkeypatch, new, old)  # a half-done rollout: some blobs under each key
    await store_secret(pg_url, SECOND)
    await mask(pg_url, redis_url, LATE)
    ring = Cipher.from_keys([new, old])
    assert await blob_key_ids(pg_url) == {
        "config": {default_key_id(old), default_key_id(new)},
        "vault": {default_key_id(old), default_key_id(new)},
    }

    dry = await rotate_database(pg_url, ring, dry_run=True, redis_url=redis_url)
    assert counts(dry) == {"config": {"kv": 0, "history": 1}, "vault": {"mappings": 2}}
    assert dry.by_key_id == {default_key_id(old): 3, default_key_id(new): 5}
    assert dry.caches_invalidated == [] and vault_hashes(redis_url) > 0, "a dry run changes nothing"
    assert await blob_key_ids(pg_url) != {"config": {default_key_id(new)}, "vault": {default_key_id(new)}}

    real = await rotate_database(pg_url, ring, dry_run=False, redis_url=redis_url)
    assert counts(real) == counts(dry) and real.by_key_id == dry.by_key_id
    assert await blob_key_ids(pg_url) == {"config": {default_key_id(new)}, "vault": {default_key_id(new)}}
    after = await rotate_database(pg_url, ring, dry_run=True)
    assert after.total == 0 and after.by_key_id == {default_key_id(new): 8}


async def test_a_running_vault_reloads_the_key_file_after_a_rotation(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A vault opened before the rotation knows only the old key; it meets originals sealed with the new one."""
    monkeypatch.delenv("ACCORD_MASTER_KEY")
    async with await Vault.connect(sqlite_url, "", sweep=False, hot_tokens=0) as running:
        masked = (await running.mask(EARLY)).text
        key_file = tmp_path / "accord.key"
        old = load_keyring(key_file=key_file, environ={})
        new = generate_key()
        write_key_file(key_file, [new, *old])  # what rotate-key does before it reseals
        report = await rotate_database(sqlite_url, Cipher.from_keys([new, *old]), dry_run=False)
        assert report.count("vault").total == 2
        assert await running.unmask(masked) == EARLY
        assert (await running.mask(LATE)).text != LATE, "and seals new originals under the new key"
    assert (await blob_key_ids(sqlite_url))["vault"] == {default_key_id(new)}
