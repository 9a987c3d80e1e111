"""The token index over a replica of acl/: what it creates or revokes holds in the same process at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from accord.auth.policy import MANAGEMENT, Policy, Rule
from accord.auth.tokens import TOKENS_PREFIX, TokenError, TokenIndex, hash_secret
from accord.core.errors import AccordError, NotFoundError
from accord.replica.replica import DEFAULT_CHECK_INTERVAL_S, Replica
from accord.store.types import PutItem
from tests.config.procs_worker import eventually

READER = Policy((Rule("config/", "read"),))


async def open_replica(sqlite_url: str, prefixes: tuple[str, ...] = ("acl/",)) -> Replica:
    # Production's revision check and no polling: nothing but the index's own write path can help it.
    return await Replica.from_url(
        sqlite_url,
        "",
        prefixes=prefixes,
        actor="token-test",
        check_interval=DEFAULT_CHECK_INTERVAL_S,
        poll_interval=60.0,
        start_timeout=10.0,
    )


@pytest.fixture
async def replica(sqlite_url: str) -> AsyncIterator[Replica]:
    async with await open_replica(sqlite_url) as opened:
        yield opened


async def test_a_revoked_token_is_refused_by_the_same_index_at_once(replica: Replica) -> None:
    index = TokenIndex(replica)
    token, secret = await index.create("reader", READER)
    assert index.authenticate(secret) == token
    await index.revoke("reader")
    assert index.authenticate(secret) is None  # no bus, no check interval: the revoke itself removed it
    assert index.list() == []
    with pytest.raises(NotFoundError):
        index.get("reader")
    assert await replica.store.get(TOKENS_PREFIX + "reader") is None


async def test_another_index_on_the_same_store_follows_creation_and_revocation(sqlite_url: str) -> None:
    async with await open_replica(sqlite_url) as here, await open_replica(sqlite_url) as there:
        issuer, verifier = TokenIndex(here), TokenIndex(there)
        token, secret = await issuer.create("reader", READER)
        assert verifier.authenticate(secret) == token  # the local bus delivered it before create returned
        await issuer.revoke("reader")
        assert verifier.authenticate(secret) is None


async def test_only_the_stored_hash_authenticates(replica: Replica) -> None:
    index = TokenIndex(replica)
    _token, secret = await index.create("reader", READER)
    stored = await replica.store.get(TOKENS_PREFIX + "reader")
    assert stored is not None and secret.encode() not in stored.value and hash_secret(secret).encode() in stored.value
    assert index.authenticate(secret + "x") is None
    assert index.authenticate(hash_secret(secret)) is None


async def test_an_expired_token_is_refused(replica: Replica) -> None:
    index = TokenIndex(replica)
    token, secret = await index.create("brief", READER, ttl=timedelta(milliseconds=200))
    assert index.authenticate(secret) == token
    await eventually(lambda: index.authenticate(secret) is None, "the token to expire", within=5)
    assert index.get("brief").expired()


async def test_names_are_unique_and_checked(replica: Replica) -> None:
    index = TokenIndex(replica)
    await index.create("reader", READER)
    with pytest.raises(TokenError, match="already exists"):
        await index.create("reader", MANAGEMENT)
    assert index.get("reader").policy == READER
    for bad in ("", "has space", "x" * 101):
        with pytest.raises(TokenError):
            await index.create(bad, READER)
    with pytest.raises(TokenError):
        await index.create("ttl", READER, ttl=timedelta(0))
    assert [t.name for t in index.list()] == ["reader"]


async def test_bootstrap_picks_a_fresh_management_name(replica: Replica) -> None:
    index = TokenIndex(replica)
    first, _ = await index.bootstrap()
    second, _ = await index.bootstrap()
    assert first.name == "management" and second.name.startswith("management-")
    assert first.policy == second.policy == MANAGEMENT


async def test_a_malformed_stored_token_is_ignored(replica: Replica) -> None:
    index = TokenIndex(replica)
    await replica.put_keys([PutItem(TOKENS_PREFIX + "junk", b"not json")])
    assert index.list() == []


async def test_the_index_needs_a_replica_of_the_token_prefix(sqlite_url: str) -> None:
    async with await open_replica(sqlite_url, prefixes=("config/",)) as config_only:
        with pytest.raises(AccordError, match="replica of acl/"):
            TokenIndex(config_only)
