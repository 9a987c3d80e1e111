"""Session parsing as Consul reads a create body, and invalidation by the reaper over a real replica."""

import json

import pytest

from accord.core.errors import ConsulApiError
from accord.registry.kv import KvService
from accord.registry.sessions import CheckStatus, SessionService, parse_create
from accord.replica.replica import Replica
from accord.store.types import PutItem

NODE = "accord"


def statuses(known: dict[str, str]) -> CheckStatus:
    return lambda check: known.get(check)


NONE = statuses({})


@pytest.mark.parametrize(
    ("given", "seconds"),
    [
        ("15s", 15.0),
        ("20ns", 20.0),
        (7, 7.0),
        (999, 60.0),
        (5_000_000_000, 5.0),
        ("0.001s", 0.001),
        ("2m", 60.0),
        (None, 15.0),
    ],
)
def test_lock_delay_follows_consuls_threshold_and_cap(given: object, seconds: float) -> None:
    session = parse_create({"lockdelay": given} if given is not None else {}, node=NODE, check_status=NONE)
    assert session.lock_delay == pytest.approx(seconds)


def test_defaults_and_case_insensitive_fields() -> None:
    session = parse_create({"NAME": "x", "Behavior": "delete", "ttl": "30s"}, node=NODE, check_status=NONE)
    assert (session.name, session.behavior, session.ttl, session.node_checks) == ("x", "delete", 30.0, ["serfHealth"])
    assert parse_create(None, node=NODE, check_status=NONE).ttl is None
    assert parse_create({"TTL": "0s", "Checks": []}, node=NODE, check_status=NONE).node_checks == []


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"TTL": "9s"}, "Invalid Session TTL '9000000000', must be between [10s=24h0m0s]"),
        ({"TTL": "86401s"}, "Invalid Session TTL '86401000000000', must be between [10s=24h0m0s]"),
        ({"Checks": ["down"]}, "Check 'down' is in critical state"),
        ({"ServiceChecks": [{"ID": "nope"}]}, "Missing check 'nope' registration"),
        ({"Node": "other"}, "Missing node registration"),
    ],
)
def test_refusals(body: dict[str, object], text: str) -> None:
    with pytest.raises(ConsulApiError) as info:
        parse_create(body, node=NODE, check_status=statuses({"down": "critical"}))
    assert info.value.status == 500 and info.value.detail.startswith(text)


async def test_a_critical_linked_check_invalidates_the_session_and_releases_its_lock(sqlite_url: str) -> None:
    prefixes = ("kv/", "registry/")
    async with await Replica.from_url(sqlite_url, "", prefixes=prefixes, actor="t", watch=False) as replica:
        kv = KvService(replica)
        sessions = SessionService(replica, kv)
        await replica.put_keys([PutItem("registry/check/web", json.dumps({"Status": "passing"}).encode())])
        session = parse_create({"Checks": ["web"], "LockDelay": "0s"}, node=NODE, check_status=sessions.check_status)
        await sessions.create(session)
        assert await kv.put("lock/k", b"v", acquire=session.id, session_exists=sessions.exists) is True
        await sessions.reap_once()
        assert sessions.exists(session.id)  # passing: nothing happens
        await replica.put_keys([PutItem("registry/check/web", json.dumps({"Status": "critical"}).encode())])
        await sessions.reap_once()
        assert not sessions.exists(session.id)
        item = kv.get("lock/k")
        assert item is not None and item.meta.session == "" and item.meta.lock_index == 1
        await sessions.aclose()
        kv.close()
