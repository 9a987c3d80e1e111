"""`accord vault mask|unmask|stats` as real processes: round trips through files and stdin, JSON output that
never shows originals unless asked, scopes, stats with expired mappings and unmask misses, clear errors.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from accord.vault import Vault
from tests.proxy.proxy_harness import SHIM, TOKEN_RE, child_env

TEXT = (
    "EKS arn:aws:eks:us-east-1:123456789012:cluster/prod-cluster, key AKIA2E0A8F3B244C9986,\n"
    "mail ops@example.com from 10.0.12.34 — 한국어 text, typed AWS_EKS_CLUSTER_001 stays as typed.\n"
)
ORIGINALS = (
    "arn:aws:eks:us-east-1:123456789012:cluster/prod-cluster",
    "AKIA2E0A8F3B244C9986",
    "ops@example.com",
    "10.0.12.34",
)


def cli(
    *args: str, db: str, redis: str = "", stdin: bytes | None = None, code: int = 0
) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(
        [sys.executable, str(SHIM), *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=child_env(db, redis),
        timeout=90,
        check=False,
    )
    assert b"Traceback" not in done.stderr, done.stderr.decode()
    assert done.returncode == code, (args, done.returncode, done.stdout.decode(), done.stderr.decode())
    return done


def stats(db: str, redis: str = "") -> dict[str, object]:
    data: dict[str, object] = json.loads(cli("vault", "stats", "--json", db=db, redis=redis).stdout)
    return data


def test_mask_and_unmask_round_trip_through_files_and_stdin(tmp_path: Path, sqlite_url: str) -> None:
    source = tmp_path / "prompt.txt"
    source.write_bytes(TEXT.encode())
    masked = cli("vault", "mask", str(source), db=sqlite_url).stdout.decode()
    assert not [original for original in ORIGINALS if original in masked]
    assert "AWS_EKS_CLUSTER_001" in masked and "VAULT_LITERAL_001" in masked and masked.endswith(".\n")
    assert len(set(TOKEN_RE.findall(masked))) == 5

    (tmp_path / "masked.txt").write_text(masked)
    restored = cli("vault", "unmask", str(tmp_path / "masked.txt"), db=sqlite_url).stdout
    assert restored == TEXT.encode(), "unmask gives the file back byte for byte"

    assert cli("vault", "mask", "-", db=sqlite_url, stdin=TEXT.encode()).stdout.decode() == masked, "same tokens"
    assert cli("vault", "mask", db=sqlite_url, stdin=TEXT.encode()).stdout.decode() == masked, "stdin by default"
    assert cli("vault", "unmask", db=sqlite_url, stdin=masked.encode()).stdout == TEXT.encode()


def test_json_output_hides_originals_unless_revealed(sqlite_url: str) -> None:
    shown = json.loads(cli("vault", "mask", "--json", db=sqlite_url, stdin=TEXT.encode()).stdout)
    assert set(shown) == {"text", "mappings"}
    assert set(shown["mappings"]) == set(TOKEN_RE.findall(shown["text"]))
    assert set(shown["mappings"].values()) == {"****"}
    revealed = json.loads(cli("vault", "mask", "--json", "--reveal", db=sqlite_url, stdin=TEXT.encode()).stdout)
    assert revealed["text"] == shown["text"]
    assert set(ORIGINALS) | {"AWS_EKS_CLUSTER_001"} == set(revealed["mappings"].values())


def test_scopes_keep_separate_mappings(sqlite_url: str) -> None:
    default = cli("vault", "mask", db=sqlite_url, stdin=b"mail ops@example.com").stdout.decode()
    other = cli("vault", "mask", "--scope", "tenant-2", db=sqlite_url, stdin=b"mail ops@example.com").stdout.decode()
    assert default == "mail EMAIL_001" and other == "mail EMAIL_002", "numbers are shared, mappings are per scope"
    assert cli("vault", "unmask", "-s", "tenant-2", db=sqlite_url, stdin=b"EMAIL_001 EMAIL_002").stdout == (
        b"EMAIL_001 ops@example.com"
    )
    assert stats(sqlite_url)["mappings"] == {"EMAIL": 2}
    scoped = json.loads(cli("vault", "stats", "--json", "--scope", "tenant-2", db=sqlite_url).stdout)
    assert scoped["mappings"] == {"EMAIL": 1}


def test_stats_counts_types_expired_mappings_and_misses(sqlite_url: str) -> None:
    async def expire_one() -> None:
        async with await Vault.connect(sqlite_url, "", mapping_ttl_seconds=1, sweep=False) as vault:
            await vault.mask("old mail gone@example.com")
            deadline = time.monotonic() + 30
            while await vault.expire_idle() == 0:
                assert time.monotonic() < deadline, "the mapping never expired"
                await asyncio.sleep(0.2)

    asyncio.run(expire_one())
    cli("vault", "mask", db=sqlite_url, stdin=TEXT.encode())
    cli("vault", "unmask", db=sqlite_url, stdin=b"EMAIL_001 EMAIL_999 EMAIL_002")  # 001 expired, 999 never issued
    numbers = stats(sqlite_url)
    assert numbers["mappings"] == {
        "AWS_ACCESS_KEY_ID": 1,
        "AWS_EKS_CLUSTER": 1,
        "EMAIL": 1,
        "IPV4": 1,
        "VAULT_LITERAL": 1,
    }
    assert (numbers["total"], numbers["expired"], numbers["unmask_misses"], numbers["unmask_expired"]) == (5, 1, 2, 1)
    table = cli("vault", "stats", db=sqlite_url).stdout.decode()
    for row in ("AWS_EKS_CLUSTER", "VAULT_LITERAL", "total", "expired", "unmask misses"):
        assert row in table, table
    assert [line.split()[-1] for line in table.splitlines() if line.strip().startswith(("total", "expired"))] == [
        "5",
        "1",
    ]


def test_bad_input_is_a_clear_error_and_stores_nothing(tmp_path: Path, sqlite_url: str) -> None:
    cli("vault", "mask", db=sqlite_url, stdin=b"nothing to mask")  # creates the store: stats never does
    before = stats(sqlite_url)
    missing = cli("vault", "mask", str(tmp_path / "nope.txt"), db=sqlite_url, code=2)
    assert missing.stderr.decode().startswith("error: cannot read") and "nope.txt" in missing.stderr.decode()
    invalid = cli("vault", "mask", db=sqlite_url, stdin=b"mail ops@example.com \xff\xfe", code=2)
    assert "not valid UTF-8" in invalid.stderr.decode()
    bad_scope = cli("vault", "mask", "--scope", "no spaces", db=sqlite_url, stdin=b"ops@example.com", code=2)
    assert "invalid scope" in bad_scope.stderr.decode()
    assert stats(sqlite_url) == before


def test_cli_and_services_share_one_vault_on_postgres_and_redis(pg_url: str, redis_url: str) -> None:
    async def service_mask() -> str:
        async with await Vault.connect(pg_url, redis_url, sweep=False) as vault:
            return (await vault.mask("cluster arn:aws:eks:eu-west-1:123456789012:cluster/shared")).text

    from_service = asyncio.run(service_mask())
    from_cli = cli(
        "vault", "mask", db=pg_url, redis=redis_url, stdin=b"cluster arn:aws:eks:eu-west-1:123456789012:cluster/shared"
    )
    assert from_cli.stdout.decode() == from_service == "cluster AWS_EKS_CLUSTER_001"
