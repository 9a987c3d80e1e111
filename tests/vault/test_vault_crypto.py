"""core/crypto.py and encryption at rest: AES-GCM blobs, keyed fingerprints, master key loading."""

from __future__ import annotations

import base64
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from accord.core.crypto import (
    MASTER_KEY_ENV,
    Cipher,
    DecryptionError,
    MasterKeyError,
    cipher_for_database,
    generate_key,
    key_file_for,
    load_master_key,
)
from accord.store.engine import create_engine, read_tx, write_tx
from accord.vault import Vault
from accord.vault._sql import tables as t
from tests.vault.vault_helpers import TEST_KEY

SECRET = b"arn:aws:eks:us-east-1:123456789012:cluster/very-secret-cluster"


def test_round_trip_and_blob_layout() -> None:
    cipher = Cipher.from_key(generate_key())
    blob = cipher.encrypt(SECRET, aad=b"ctx")
    assert cipher.decrypt(blob, aad=b"ctx") == SECRET
    assert blob[0] == 1
    assert blob[2 : 2 + blob[1]].decode() == cipher.active
    assert len(blob) == 2 + blob[1] + 12 + len(SECRET) + 16
    assert SECRET not in blob
    assert cipher.encrypt(SECRET, aad=b"ctx") != blob, "every blob gets a fresh nonce"


@pytest.mark.parametrize("position", [0, 1, 5, 20, -1])
def test_tampering_is_detected(position: int) -> None:
    cipher = Cipher.from_key(generate_key())
    blob = bytearray(cipher.encrypt(SECRET, aad=b"ctx"))
    blob[position] ^= 0x01
    with pytest.raises(DecryptionError) as caught:
        cipher.decrypt(bytes(blob), aad=b"ctx")
    assert SECRET.decode() not in caught.value.detail


def test_wrong_context_wrong_key_and_garbage_fail_clearly() -> None:
    key = generate_key()
    cipher = Cipher({"k1": key}, "k1")
    blob = cipher.encrypt(SECRET, aad=b"scope-a")
    with pytest.raises(DecryptionError, match="failed authentication"):
        cipher.decrypt(blob, aad=b"scope-b")
    with pytest.raises(DecryptionError, match="failed authentication"):
        Cipher({"k1": generate_key()}, "k1").decrypt(blob, aad=b"scope-a")
    with pytest.raises(DecryptionError, match="not in this keyring"):
        Cipher.from_key(generate_key()).decrypt(blob, aad=b"scope-a")
    with pytest.raises(DecryptionError, match="truncated"):
        cipher.decrypt(blob[:20], aad=b"scope-a")
    with pytest.raises(DecryptionError, match="version"):
        cipher.decrypt(b"\x07" + blob[1:], aad=b"scope-a")


def test_rotation_keeps_old_blobs_and_fingerprints() -> None:
    old, new = generate_key(), generate_key()
    before = Cipher({"old": old}, "old")
    blob, fingerprint = before.encrypt(SECRET, aad=b""), before.fingerprint(SECRET)
    after = Cipher({"old": old, "new": new}, "new", fingerprint_key="old")
    assert after.decrypt(blob, aad=b"") == SECRET
    assert after.encrypt(SECRET, aad=b"")[2 : 2 + 3] == b"new"
    assert after.fingerprint(SECRET) == fingerprint


def test_fingerprints_are_keyed_and_stable() -> None:
    key = generate_key()
    assert Cipher.from_key(key).fingerprint(SECRET) == Cipher.from_key(key).fingerprint(SECRET)
    assert Cipher.from_key(key).fingerprint(SECRET) != Cipher.from_key(generate_key()).fingerprint(SECRET)
    assert len(Cipher.from_key(key).fingerprint(SECRET)) == 32
    assert Cipher.from_key(key).fingerprint(SECRET) != Cipher.from_key(key).fingerprint(SECRET + b"x")


def test_bad_keyrings_are_refused() -> None:
    with pytest.raises(MasterKeyError, match="32 bytes"):
        Cipher({"k": b"short"}, "k")
    with pytest.raises(MasterKeyError, match="not in the keyring"):
        Cipher({"k": generate_key()}, "other")
    with pytest.raises(MasterKeyError, match="key id"):
        Cipher({"bad id": generate_key()}, "bad id")
    assert "k" in repr(Cipher({"k": generate_key()}, "k"))


def test_master_key_from_environment() -> None:
    key = generate_key()
    assert load_master_key(key_file=None, environ={MASTER_KEY_ENV: base64.b64encode(key).decode()}) == key


@pytest.mark.parametrize("text", ["not base64 at all!", base64.b64encode(b"sixteen bytes...").decode()])
def test_malformed_master_key_is_a_clear_error(text: str) -> None:
    with pytest.raises(MasterKeyError) as caught:
        load_master_key(key_file=None, environ={MASTER_KEY_ENV: text})
    assert MASTER_KEY_ENV in caught.value.detail
    assert text not in caught.value.detail, "the error must not echo key material"


def test_postgres_without_master_key_says_what_to_set() -> None:
    with pytest.raises(MasterKeyError, match=MASTER_KEY_ENV):
        cipher_for_database("postgresql://u@localhost/db", environ={})
    assert key_file_for("postgresql://u@localhost/db") is None


def test_key_file_is_created_once_beside_the_database_with_mode_0600(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/data/accord.db"
    assert key_file_for(url) == tmp_path / "data" / "accord.key"
    with ThreadPoolExecutor(8) as pool:
        ciphers = list(pool.map(lambda _: cipher_for_database(url, environ={}), range(8)))
    key_file = tmp_path / "data" / "accord.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len({cipher.fingerprint(SECRET) for cipher in ciphers}) == 1, "racing processes must share one key"
    assert len(base64.b64decode(key_file.read_text())) == 32
    assert not [p for p in key_file.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_corrupt_key_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "accord.key").write_text("garbage")
    with pytest.raises(MasterKeyError, match=r"accord\.key"):
        cipher_for_database(f"sqlite:///{tmp_path}/accord.db", environ={})


def _files(directory: Path) -> dict[str, bytes]:
    """The database file with its WAL, and the key file: everything that rests on disk."""
    return {path.name: path.read_bytes() for path in directory.iterdir() if path.name.startswith("accord.")}


async def test_originals_never_rest_in_plaintext_in_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    url = f"sqlite:///{tmp_path}/accord.db"
    async with await Vault.connect(url, "", sweep=False) as vault:
        masked = await vault.mask(f"deploy to {SECRET.decode()} please")
        assert await vault.unmask(masked.text) == f"deploy to {SECRET.decode()} please"
    files = _files(tmp_path)
    assert "accord.key" in files
    assert files["accord.db"], "nothing was written"
    for name, content in files.items():
        assert SECRET not in content, f"{name} holds the original in clear"


async def test_originals_never_rest_in_plaintext_in_postgres_or_redis(pg_url: str, redis_url: str) -> None:
    monkeypatch_key = Cipher.from_key(base64.b64decode(TEST_KEY))
    async with await Vault.connect(pg_url, redis_url, cipher=monkeypatch_key, sweep=False) as vault:
        await vault.mask(f"deploy to {SECRET.decode()} please")
    engine = create_engine(pg_url)
    try:
        async with read_tx(engine) as conn:
            rows = (await conn.execute(sa.select(t.mapping))).all()
    finally:
        await engine.dispose()
    assert len(rows) == 1
    assert all(SECRET not in (value if isinstance(value, bytes) else str(value).encode()) for value in rows[0])
    with redis.Redis.from_url(redis_url) as client:
        for key in client.keys("*"):
            if client.type(key) == b"hash":
                assert not any(SECRET in k or SECRET in v for k, v in client.hgetall(key).items())


async def test_a_blob_moved_to_another_row_does_not_open(sqlite_url: str, master_key: str) -> None:
    async with await Vault.connect(sqlite_url, "", sweep=False) as vault:
        masked = await vault.mask("a@example.com and b@example.com")
        first, second = sorted(masked.mappings)
        async with write_tx(vault.engine) as conn:
            blob = await conn.scalar(sa.select(t.mapping.c.original).where(t.mapping.c.token == first))
            await conn.execute(sa.update(t.mapping).where(t.mapping.c.token == second).values(original=blob))
        assert await vault.unmask(first) == masked.mappings[first]
        with pytest.raises(DecryptionError):
            await vault.unmask(second)


async def test_rotation_keeps_tokens_stable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fingerprint key is pinned in the database, so the same original keeps its token after a rotation."""

    old, new = generate_key(), generate_key()
    db_url = f"sqlite:///{tmp_path}/rot.db"
    monkeypatch.setenv("ACCORD_MASTER_KEY", base64.b64encode(old).decode())
    async with await Vault.connect(db_url, "") as vault:
        before = await vault.mask("write to alice@example.com")
    monkeypatch.setenv("ACCORD_MASTER_KEY", base64.b64encode(new).decode())
    monkeypatch.setenv("ACCORD_MASTER_KEYS_RETIRED", base64.b64encode(old).decode())
    async with await Vault.connect(db_url, "") as vault:
        after = await vault.mask("write to alice@example.com")
        assert after.text == before.text
        assert await vault.unmask(after.text) == "write to alice@example.com"
    monkeypatch.delenv("ACCORD_MASTER_KEYS_RETIRED")
    with pytest.raises(MasterKeyError, match="fingerprints were made with key"):
        await Vault.connect(db_url, "")
