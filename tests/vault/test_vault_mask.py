"""mask / unmask on SQLite, PostgreSQL and PostgreSQL + Redis: stable tokens, escaping, scopes, bad input."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

import accord
from accord.core.errors import RequestTooLargeError
from accord.store.engine import read_tx
from accord.vault import InvalidInputError, Vault, VaultError, VaultSettings
from accord.vault._sql import tables as t
from accord.vault.batch import mask_many
from accord.vault.sequences import sequence_name
from tests.bus.deployment import redis_keys_at
from tests.vault.vault_helpers import VaultBackend

EKS = "arn:aws:eks:us-east-1:123456789012:cluster/production-cluster"
EKS2 = "arn:aws:eks:eu-west-1:123456789012:cluster/staging"
ROLE = "arn:aws:iam::123456789012:role/Deployer"
TEXT = f"Deploy {EKS} with role {ROLE}; mail ops@example.com from 10.1.2.3."


async def _rows(vault: Vault) -> int:
    async with read_tx(vault.engine) as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(t.mapping)) or 0)


async def test_round_trip(vault: Vault) -> None:
    masked = await vault.mask(TEXT)
    assert masked.text == "Deploy AWS_EKS_CLUSTER_001 with role AWS_IAM_ROLE_001; mail EMAIL_001 from IPV4_001."
    assert masked.mappings == {
        "AWS_EKS_CLUSTER_001": EKS,
        "AWS_IAM_ROLE_001": ROLE,
        "EMAIL_001": "ops@example.com",
        "IPV4_001": "10.1.2.3",
    }
    assert EKS not in repr(masked), "a MaskResult never shows originals in logs"
    assert await vault.unmask(masked.text) == TEXT
    assert (await vault.mask("nothing sensitive here")).text == "nothing sensitive here"


async def test_same_original_same_token_new_original_next_number(vault: Vault, backend: VaultBackend) -> None:
    first = await vault.mask(f"{EKS} and {EKS}")
    assert first.text == "AWS_EKS_CLUSTER_001 and AWS_EKS_CLUSTER_001"
    async with await Vault.connect(backend.db_url, backend.redis_url, sweep=False) as other:
        assert (await other.mask(f"{EKS2}, then {EKS}")).text == "AWS_EKS_CLUSTER_002, then AWS_EKS_CLUSTER_001"
        assert await other.unmask(first.text) == f"{EKS} and {EKS}"
    async with await Vault.connect(backend.db_url, backend.redis_url, sweep=False) as restarted:
        assert (await restarted.mask(EKS2)).text == "AWS_EKS_CLUSTER_002"
    assert await _rows(vault) == 2


async def test_many_concurrent_masks_of_new_values_agree(vault: Vault, backend: VaultBackend) -> None:
    emails = [f"user{i}@example.com" for i in range(40)]
    async with await Vault.connect(backend.db_url, backend.redis_url, sweep=False) as other:
        results = await asyncio.gather(
            *[v.mask(" ".join(emails[i:] + emails[:i])) for i in range(10) for v in (vault, other)]
        )
    token_of: dict[str, str] = {}
    for result in results:
        for token, original in result.mappings.items():
            assert token_of.setdefault(original, token) == token
    assert len(set(token_of.values())) == len(emails)
    assert await _rows(vault) == len(emails)


async def test_unknown_token_shaped_text_is_left_alone_and_counted(vault: Vault) -> None:
    await vault.mask(EKS)
    text = "AWS_EKS_CLUSTER_999 and AWS_EKS_CLUSTER_001 and ERROR_CODE_500 and EMAIL_12"
    assert await vault.unmask(text) == f"AWS_EKS_CLUSTER_999 and {EKS} and ERROR_CODE_500 and EMAIL_12"
    stats = await vault.stats()
    assert stats.unmask_misses == 1
    assert stats.mappings == {"AWS_EKS_CLUSTER": 1}


async def test_token_shaped_input_is_escaped_and_never_unmasked_into_an_original(vault: Vault) -> None:
    real = await vault.mask(EKS)
    assert real.text == "AWS_EKS_CLUSTER_001"
    typed = "please explain AWS_EKS_CLUSTER_001 and AWS_EKS_CLUSTER_777"
    masked = await vault.mask(typed)
    assert "AWS_EKS_CLUSTER_001" not in masked.text
    assert masked.text == "please explain VAULT_LITERAL_001 and VAULT_LITERAL_002"
    answer = f"About {masked.text.split()[-3]}: it is fine."
    assert await vault.unmask(answer) == "About AWS_EKS_CLUSTER_001: it is fine.", "comes back as typed"
    assert EKS not in await vault.unmask(answer)


async def test_only_restricts_what_is_unmasked(vault: Vault) -> None:
    one = await vault.mask("a@example.com")
    two = await vault.mask("b@example.com")
    text = f"{one.text} {two.text}"
    assert await vault.unmask(text, only=set(one.mappings)) == f"a@example.com {two.text}"


async def test_scopes_are_separate(vault: Vault) -> None:
    tenant_a = await vault.mask("ops@example.com", scope="tenant-a")
    tenant_b = await vault.mask("dev@example.com", scope="tenant-b")
    assert tenant_a.text == "EMAIL_001"
    assert tenant_b.text == "EMAIL_002", "numbers are per type, so tokens never collide across scopes"
    assert await vault.unmask("EMAIL_001 EMAIL_002", scope="tenant-a") == "ops@example.com EMAIL_002"
    assert (await vault.mask("ops@example.com", scope="tenant-b")).text == "EMAIL_003"
    assert (await vault.stats(scope="tenant-b")).mappings == {"EMAIL": 2}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (b"ops@example.com \xff\xfe", "not valid UTF-8"),
        ("ops@example.com \ud800", "lone surrogate"),
        (12345, "must be str"),
        (None, "must be str"),
        (["ops@example.com"], "must be str"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_stored(vault: Vault, bad: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        await vault.mask(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        await vault.unmask(bad)  # type: ignore[arg-type]
    assert await _rows(vault) == 0
    assert (await vault.stats()).mappings == {}


async def test_max_new_refuses_a_text_over_it_and_stores_nothing(vault: Vault) -> None:
    # TEXT holds 4 distinct values; the same value twice counts once.
    with pytest.raises(RequestTooLargeError, match="more than 3 distinct values"):
        await vault.mask(f"{TEXT} {EKS}", max_new=3)
    assert await _rows(vault) == 0
    assert (await vault.mask(f"{TEXT} {EKS}", max_new=4)).text.count("AWS_EKS_CLUSTER_001") == 2
    assert await _rows(vault) == 4


async def test_mask_many_counts_max_new_over_all_texts_on_both_paths(vault: Vault) -> None:
    texts = ["mail ops@example.com from 10.1.2.3", f"deploy {EKS}", "ops@example.com again"]
    with pytest.raises(RequestTooLargeError):
        await mask_many(vault, texts, "default", max_new=2)
    with pytest.raises(RequestTooLargeError):  # a NUL: masked one by one, still counted first
        await mask_many(vault, [*texts, "a NUL \x00 here"], "default", max_new=2)
    assert await _rows(vault) == 0
    masked, mappings = await mask_many(vault, texts, "default", max_new=3)
    assert masked == ["mail EMAIL_001 from IPV4_001", "deploy AWS_EKS_CLUSTER_001", "EMAIL_001 again"]
    assert set(mappings) == {"EMAIL_001", "IPV4_001", "AWS_EKS_CLUSTER_001"}


async def test_bad_scope_is_refused(vault: Vault) -> None:
    for scope in ["", "has space", "{brace}", "x" * 129]:
        with pytest.raises(InvalidInputError, match="scope"):
            await vault.mask("ops@example.com", scope=scope)
    assert await _rows(vault) == 0


async def test_utf8_bytes_and_non_ascii_text(vault: Vault) -> None:
    text = "클러스터 " + EKS + " 담당자 운영@example.com 또는 ops@example.com 입니다"
    masked = await vault.mask(text.encode())
    assert "AWS_EKS_CLUSTER_001" in masked.text
    assert await vault.unmask(masked.text.encode()) == text


async def test_token_numbers_grow_past_three_digits(vault: Vault) -> None:
    masked = await vault.mask(" ".join(f"u{i}@example.com" for i in range(1001)))
    assert masked.text.split()[-1] == "EMAIL_1001"
    assert masked.text.split()[0] == "EMAIL_001"
    assert await vault.unmask(masked.text) == " ".join(f"u{i}@example.com" for i in range(1001))


async def test_new_types_from_other_instances_unmask_after_refresh(backend: VaultBackend) -> None:
    async with (
        await Vault.connect(
            backend.db_url, backend.redis_url, custom_patterns={"TICKET": r"TCK-[A-Z]{3}\b"}, sweep=False
        ) as writer,
        await Vault.connect(backend.db_url, backend.redis_url, sweep=False) as reader,
    ):
        masked = await writer.mask("see TCK-ABC")
        assert masked.text == "see TICKET_001"
        assert await reader.unmask(masked.text) == masked.text, "the reader does not know TICKET yet"
        await reader.refresh_types()
        assert await reader.unmask(masked.text) == "see TCK-ABC"


async def test_live_config_and_explicit_settings_do_not_mix(tmp_path: Path) -> None:
    async with await accord.connect(f"sqlite:///{tmp_path}/a.db", "", groups=[VaultSettings], watch=False) as cfg:
        with pytest.raises(VaultError, match="LiveConfig"):
            await Vault.connect(live=cfg, mapping_ttl_seconds=5)
    async with await accord.connect(f"sqlite:///{tmp_path}/b.db", "", watch=False) as bare:
        with pytest.raises(VaultError, match="VaultSettings"):
            await Vault.connect(live=bare)


async def test_redis_keeps_only_ciphertext_and_fingerprints(pg_url: str, redis_url: str, master_key: str) -> None:
    async with await Vault.connect(pg_url, redis_url, sweep=False) as vault:
        await vault.mask(TEXT)
    ours = await redis_keys_at(pg_url)
    with redis.Redis.from_url(redis_url) as client:
        keys = sorted(key.decode() for key in client.keys("*"))
        assert ours.sequence_prefix + sequence_name("AWS_EKS_CLUSTER") in keys
        assert all(ours.owns(key) for key in keys), "every key in this deployment's namespace"
        assert client.hlen(ours.vault_scope("default")[1]) == 4
        for value in client.hvals(ours.vault_scope("default")[1]):
            assert b"example.com" not in value and b"arn:aws" not in value
