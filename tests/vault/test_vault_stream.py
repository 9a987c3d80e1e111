"""StreamUnmasker: tokens split anywhere across chunks come back whole; text flows out as soon as it can."""

from __future__ import annotations

import random

import pytest

from accord.store.engine import write_tx
from accord.vault import InvalidInputError, StreamUnmasker, Vault
from accord.vault._sql.sequences import reserve_range
from accord.vault.sequences import sequence_name
from accord.vault.tokens import MAX_DIGITS

ORIGINAL = (
    "Cluster arn:aws:eks:us-east-1:123456789012:cluster/production-cluster is owned by ops@example.com; "
    "its endpoint arn:aws:sagemaker:us-west-2:123456789012:endpoint/churn runs at 10.20.30.40."
)


async def _stream(vault: Vault, chunks: list[str | bytes], **kwargs: object) -> tuple[str, int]:
    unmasker = StreamUnmasker(vault, **kwargs)  # type: ignore[arg-type]
    out = []
    longest_hold = 0
    for chunk in chunks:
        out.append(await unmasker.feed(chunk))
        longest_hold = max(longest_hold, len(unmasker.held))
    out.append(await unmasker.flush())
    assert unmasker.held == ""
    return "".join(out), longest_hold


async def test_a_token_split_at_every_position_is_restored_whole(vault: Vault) -> None:
    masked = (await vault.mask(ORIGINAL)).text
    assert masked.count("_0") == 4
    for cut in range(len(masked) + 1):
        text, _ = await _stream(vault, [masked[:cut], masked[cut:]])
        assert text == ORIGINAL, f"split at {cut}: {masked[:cut]!r} | {masked[cut:]!r}"


async def test_random_small_chunks(vault: Vault) -> None:
    masked = (await vault.mask(ORIGINAL)).text
    rng = random.Random(7)
    for _ in range(30):
        cuts = sorted(rng.sample(range(1, len(masked)), rng.randint(1, 40)))
        chunks = [masked[a:b] for a, b in zip([0, *cuts], [*cuts, len(masked)], strict=True)]
        assert (await _stream(vault, list(chunks)))[0] == ORIGINAL


async def test_text_is_emitted_as_soon_as_it_can_be(vault: Vault) -> None:
    masked = await vault.mask("ops@example.com")
    unmasker = StreamUnmasker(vault)
    assert await unmasker.feed("plain words flow through. ") == "plain words flow through. "
    assert await unmasker.feed("mail EM") == "mail "
    assert unmasker.held == "EM"
    assert await unmasker.feed("AIL_00") == ""
    assert await unmasker.feed("1 now") == "ops@example.com now"
    assert await unmasker.feed(" EMAIL_0012") == " "
    assert await unmasker.flush() == "EMAIL_0012", "an unknown token is left as it is"
    assert masked.text == "EMAIL_001"


async def test_bytes_chunks_may_split_a_character(vault: Vault) -> None:
    original = "담당자 ops@example.com 입니다 ✓"
    data = (await vault.mask(original)).text.encode()
    for cut in range(len(data) + 1):
        assert (await _stream(vault, [data[:cut], data[cut:]]))[0] == original


async def test_invalid_utf8_in_a_stream_is_a_clear_error(vault: Vault) -> None:
    unmasker = StreamUnmasker(vault)
    with pytest.raises(InvalidInputError, match="UTF-8"):
        await unmasker.feed(b"ok \xff\xfe")
    truncated = StreamUnmasker(vault)
    await truncated.feed("é".encode()[:1])
    with pytest.raises(InvalidInputError, match="UTF-8"):
        await truncated.flush()


async def test_only_limits_a_stream_too(vault: Vault) -> None:
    allowed = await vault.mask("a@example.com")
    other = await vault.mask("b@example.com")
    text, _ = await _stream(vault, [f"{allowed.text} {other.text}"], only=set(allowed.mappings))
    assert text == f"a@example.com {other.text}"


LONGEST_TYPE = "THE_LONGEST_TOKEN_TYPE_OF_THIS_VAULT_BY_FAR"  # longer than every built-in type


async def test_the_hold_back_is_exactly_the_longest_possible_token(sqlite_url: str) -> None:
    """The longest type, ``_`` and the most digits: a complete token that long still waits, since a digit
    after it would make it no token; a hold-back one character shorter lets it out unmasked."""
    patterns = {LONGEST_TYPE: r"ticket-[0-9a-f]{8}"}
    async with await Vault.connect(sqlite_url, "", sweep=False, custom_patterns=patterns) as vault:
        assert max(vault.grammar.types, key=len) == LONGEST_TYPE
        async with write_tx(vault.engine) as conn:  # the next number of the type has the most digits
            await reserve_range(conn, sequence_name(LONGEST_TYPE), 10 ** (MAX_DIGITS - 1))
        token = (await vault.mask("ticket-0badcafe")).text
        assert token == f"{LONGEST_TYPE}_{10 ** (MAX_DIGITS - 1) + 1}"
        assert len(token) == len(LONGEST_TYPE) + 1 + MAX_DIGITS == vault.grammar.max_len

        whole = StreamUnmasker(vault)
        assert await whole.feed("see " + token) == "see "
        assert whole.held == token, "the whole longest token is held back"
        assert await whole.feed(" now") == "ticket-0badcafe now"

        spoilt = StreamUnmasker(vault)
        assert await spoilt.feed("see " + token) == "see "
        assert await spoilt.feed("7") + await spoilt.flush() == token + "7", "20 digits are no token"

        shorter = StreamUnmasker(vault)
        assert await shorter.feed("see " + token[:-1]) == "see "
        assert shorter.held == token[:-1]
        assert await shorter.feed(token[-1]) == "" and shorter.held == token
        assert await shorter.flush() == "ticket-0badcafe"
