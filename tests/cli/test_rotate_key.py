"""`accord secrets rotate-key`: every sealed blob (config secrets and vault originals) resealed in one transaction,
readable by old and new processes; the dry run counts what the real run reseals."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import stat
from pathlib import Path

import httpx
import pytest

import accord
from accord.core.crypto import Cipher, default_key_id, generate_key, load_keyring, write_key_file
from tests.cli.cli_helpers import (
    SECRET,
    AccordServer,
    Llm,
    ServerFactory,
    await_server_value,
    one_line_error,
    run_cli,
    server_value,
)

SECOND = "sk-live-second-value-0000"
THIRD = "sk-live-third-value-99999"
NO_ENV_KEY = {"ACCORD_MASTER_KEY": ""}  # empty counts as unset: the key file beside the database is used


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def blobs(db_file: Path) -> dict[str, bytes]:
    """Every secret blob in the database file: the current value and each history row."""
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True) as conn:
        current = conn.execute("SELECT key, value FROM accord_kv WHERE secret").fetchall()
        history = conn.execute("SELECT revision, value FROM accord_kv_history WHERE secret AND value IS NOT NULL")
        rows = {f"kv:{key}": bytes(value) for key, value in current}
        rows |= {f"history:{revision}": bytes(value) for revision, value in history.fetchall()}
    return rows


def key_ids(rows: dict[str, bytes]) -> set[str]:
    return {Cipher.key_id_of(blob) for blob in rows.values()}


def database_bytes(db_file: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (db_file, db_file.with_name(db_file.name + "-wal")) if p.exists())


async def store_two_secrets(db_url: str) -> None:
    async with await accord.connect(db_url, "", groups=[Llm], watch=False) as cfg:
        await cfg.set("llm.api_key", SECRET)
        await cfg.set("llm.api_key", SECOND)


def history_revealed(server: AccordServer) -> list[object]:
    headers = {"Authorization": f"Bearer {server.token}"}
    url = f"{server.addr}/api/config/llm.api_key/history"
    response = httpx.get(url, headers=headers, params={"reveal": "true"}, timeout=10)
    assert response.status_code == 200, response.text
    return [row["value"] for row in response.json()]


async def test_key_file_rotation_keeps_fresh_and_running_processes_working(
    sqlite_url: str, tmp_path: Path, start_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACCORD_MASTER_KEY")
    await store_two_secrets(sqlite_url)
    db_file, key_file = tmp_path / "accord.db", tmp_path / "accord.key"
    old_key = key_file.read_text().strip()
    server = start_server(sqlite_url, env=NO_ENV_KEY)
    assert server_value(server, "llm.api_key", reveal=True) == SECOND
    before = blobs(db_file)
    assert len(before) == 3 and key_ids(before) == {default_key_id(base64.b64decode(old_key))}

    proc = run_cli("secrets", "rotate-key", "--json", db=sqlite_url, extra=NO_ENV_KEY)
    report = json.loads(proc.stdout)
    assert report["reencrypted"] == {"config": {"kv": 1, "history": 2}, "vault": {"mappings": 0}}
    assert report["dry_run"] is False
    lines = key_file.read_text().split()
    assert len(lines) == 2 and lines[1] == old_key and lines[0] != old_key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert lines[0] not in proc.stdout + proc.stderr and old_key not in proc.stdout + proc.stderr
    after = blobs(db_file)
    assert key_ids(after) == {report["active_key_id"]} == {default_key_id(base64.b64decode(lines[0]))}
    assert after.keys() == before.keys() and all(after[name] != before[name] for name in before)
    stored = database_bytes(db_file)
    assert SECRET.encode() not in stored and SECOND.encode() not in stored

    fresh = run_cli("config", "get", "llm.api_key", "--reveal", "--json", db=sqlite_url, extra=NO_ENV_KEY)
    assert json.loads(fresh.stdout)["value"] == SECOND
    # the server loaded the old key only; history rows are now sealed with the new one, so it re-reads the file
    assert server_value(server, "llm.api_key", reveal=True) == SECOND
    assert history_revealed(server) == [SECOND, SECRET]
    run_cli("config", "set", "llm.api_key", THIRD, db=sqlite_url, extra=NO_ENV_KEY)
    await_server_value(server, "llm.api_key", THIRD, reveal=True)
    assert THIRD.encode() not in database_bytes(db_file)
    check = json.loads(run_cli("secrets", "rotate-key", "--dry-run", "--json", db=sqlite_url, extra=NO_ENV_KEY).stdout)
    assert check["reencrypted"] == {"config": {"kv": 0, "history": 0}, "vault": {"mappings": 0}}
    assert check["blobs_by_key_id_before"] == {report["active_key_id"]: 4} and key_file.read_text().split() == lines


async def test_env_key_staged_rollout_with_a_running_server(
    sqlite_url: str, tmp_path: Path, start_server: ServerFactory
) -> None:
    old, new = os.environ["ACCORD_MASTER_KEY"], b64(generate_key())
    await store_two_secrets(sqlite_url)
    db_file = tmp_path / "accord.db"
    before = blobs(db_file)
    refused = run_cli("secrets", "rotate-key", db=sqlite_url, code=2)
    assert "--print-new-key or --new-key-file" in one_line_error(refused) and blobs(db_file) == before

    staged = {"ACCORD_MASTER_KEYS_RETIRED": new}  # step 1: every process learns the new key as decrypt-only
    server = start_server(sqlite_url, env=staged)
    args = ("secrets", "rotate-key", "--new-key-env", "NEW_KEY", "--json")
    proc = run_cli(*args, db=sqlite_url, extra={**staged, "NEW_KEY": new})
    report = json.loads(proc.stdout)
    assert new not in proc.stdout and old not in proc.stdout and "new_key" not in report
    assert report["reencrypted"] == {"config": {"kv": 1, "history": 2}, "vault": {"mappings": 0}}
    assert any("ACCORD_MASTER_KEYS_RETIRED" in step for step in report["next_steps"])
    assert not any("Until an instance restarts" in step for step in report["next_steps"])
    assert key_ids(blobs(db_file)) == {default_key_id(base64.b64decode(new))}
    assert history_revealed(server) == [SECOND, SECRET]
    run_cli("config", "set", "llm.api_key", THIRD, addr=server.addr, token=server.token)  # sealed with old

    promoted = {"ACCORD_MASTER_KEY": new, "ACCORD_MASTER_KEYS_RETIRED": old}  # step 3: the new key seals
    got = run_cli("config", "get", "llm.api_key", "--reveal", "--json", db=sqlite_url, extra=promoted)
    assert json.loads(got.stdout)["value"] == THIRD
    only_old = run_cli("config", "history", "llm.api_key", "--json", db=sqlite_url)
    assert [row["value"] for row in json.loads(only_old.stdout)][1:] != ["sk-l****0000", "sk-l****cdef"]

    third = tmp_path / "third.key"
    args = ("secrets", "rotate-key", "--print-new-key", "--new-key-file", str(third), "--json")
    report = json.loads(run_cli(*args, db=sqlite_url, extra=promoted).stdout)
    assert report["new_key"] == third.read_text().strip() and stat.S_IMODE(third.stat().st_mode) == 0o600
    assert any("Until an instance restarts" in step for step in report["next_steps"])
    only_third = {"ACCORD_MASTER_KEY": report["new_key"]}
    history = run_cli("config", "history", "llm.api_key", "--json", db=sqlite_url, extra=only_third)
    assert [row["value"] for row in json.loads(history.stdout)] == ["sk-l****9999", "sk-l****0000", "sk-l****cdef"]


async def test_an_unreadable_blob_aborts_the_whole_rotation(sqlite_url: str, tmp_path: Path) -> None:
    await store_two_secrets(sqlite_url)
    db_file = tmp_path / "accord.db"
    first = min(int(name.split(":")[1]) for name in blobs(db_file) if name.startswith("history:"))
    with sqlite3.connect(db_file) as conn:
        (value,) = conn.execute("SELECT value FROM accord_kv_history WHERE revision = ?", (first,)).fetchone()
        tampered = bytes(value[:-1]) + bytes([value[-1] ^ 1])
        conn.execute("UPDATE accord_kv_history SET value = ? WHERE revision = ?", (tampered, first))
    before = blobs(db_file)
    args = ("secrets", "rotate-key", "--new-key-env", "NEW_KEY")
    proc = run_cli(*args, db=sqlite_url, extra={"NEW_KEY": b64(generate_key())}, code=1)
    line = one_line_error(proc)
    assert f"revision {first}" in line and "nothing was re-encrypted" in line
    assert blobs(db_file) == before


def test_key_file_keyring_format(tmp_path: Path) -> None:
    active, retired = generate_key(), generate_key()
    path = tmp_path / "accord.key"
    write_key_file(path, [active, retired])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text(f"# rotated by ops\n{b64(active)}\n\n{b64(retired)}\n")
    assert load_keyring(key_file=path, environ={}) == [active, retired]
    old_blob = Cipher.from_key(retired).encrypt(b"v", aad=b"k")
    ring = Cipher.from_keys([active, retired])
    assert ring.active == default_key_id(active) and ring.decrypt(old_blob, aad=b"k") == b"v"
    env = {"ACCORD_MASTER_KEY": b64(active), "ACCORD_MASTER_KEYS_RETIRED": f"{b64(retired)}, "}
    assert load_keyring(key_file=None, environ=env) == [active, retired]


VAULT_TEXT = "Restart arn:aws:eks:us-east-1:123456789012:cluster/prod and mail ops@example.com"


def vault_cli(command: str, text: str, tmp_path: Path, db_url: str, env: dict[str, str] | None = None) -> str:
    source = tmp_path / f"{command}.txt"
    source.write_text(text)
    return run_cli("vault", command, str(source), db=db_url, extra=NO_ENV_KEY if env is None else env).stdout


async def test_key_file_rotation_reseals_the_vault_and_keeps_its_fingerprint_key(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACCORD_MASTER_KEY")
    await store_two_secrets(sqlite_url)
    masked = vault_cli("mask", VAULT_TEXT, tmp_path, sqlite_url)  # the first vault pins the file's key
    key_file = tmp_path / "accord.key"
    pinned = default_key_id(base64.b64decode(key_file.read_text().strip()))

    dry = json.loads(run_cli("secrets", "rotate-key", "--dry-run", "--json", db=sqlite_url, extra=NO_ENV_KEY).stdout)
    assert dry["capabilities"]["vault"]["blobs_by_key_id"] == {pinned: 2}, "the dry run counts the vault too"
    assert dry["never_delete_key_ids"] == [pinned]
    proc = run_cli("secrets", "rotate-key", "--json", db=sqlite_url, extra=NO_ENV_KEY)
    report = json.loads(proc.stdout)
    assert report["reencrypted"] == {"config": {"kv": 1, "history": 2}, "vault": {"mappings": 2}}
    assert report["never_delete_key_ids"] == [pinned]
    assert any(f"Never delete key {pinned}" in step for step in report["next_steps"])
    assert not any("Delete an old line only" in step and pinned in step for step in report["next_steps"])
    human = run_cli("secrets", "rotate-key", "--dry-run", db=sqlite_url, extra=NO_ENV_KEY).stdout
    assert f"never delete: {pinned}" in human and "vault: 0 (mappings 0)" in human

    after = json.loads(run_cli("secrets", "rotate-key", "--dry-run", "--json", db=sqlite_url, extra=NO_ENV_KEY).stdout)
    assert after["blobs_by_key_id_before"] == {report["active_key_id"]: 5}, "nothing is left under the old key"
    assert vault_cli("unmask", masked, tmp_path, sqlite_url) == VAULT_TEXT
    assert vault_cli("mask", VAULT_TEXT, tmp_path, sqlite_url) == masked, "tokens survive the rotation"


async def test_cli_dry_run_counts_what_the_rotation_then_reseals(sqlite_url: str, tmp_path: Path) -> None:
    await store_two_secrets(sqlite_url)
    vault_cli("mask", VAULT_TEXT, tmp_path, sqlite_url, env={})  # ACCORD_MASTER_KEY of the suite
    new = {"NEW_KEY": b64(generate_key())}
    args = ("secrets", "rotate-key", "--new-key-env", "NEW_KEY", "--json")
    dry = json.loads(run_cli(*args, "--dry-run", db=sqlite_url, extra=new).stdout)
    real = json.loads(run_cli(*args, db=sqlite_url, extra=new).stdout)
    assert dry["dry_run"] is True and real["dry_run"] is False
    assert dry["reencrypted"] == real["reencrypted"] == {"config": {"kv": 1, "history": 2}, "vault": {"mappings": 2}}
    assert dry["capabilities"] == real["capabilities"]
    assert real["active_key_id"] == default_key_id(base64.b64decode(new["NEW_KEY"]))
