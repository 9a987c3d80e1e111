"""Two `accord serve` replicas on one PostgreSQL and one Redis: KV changes, watches and sessions cross them."""

import threading
from typing import Any

from tests.harness import AccordServers, wait_until
from tests.server.consul.conftest import client_for


def test_a_blocking_query_on_one_replica_is_woken_by_a_write_through_the_other(
    pg_url: str, redis_url: str, accord_servers: AccordServers
) -> None:
    first = accord_servers.start(pg_url, redis_url, expect_token=True)
    second = accord_servers.start(pg_url, redis_url)
    a, b = client_for(first, first.token), client_for(second, first.token)
    a.kv.put("cross/k", "1")
    assert wait_until(lambda: b.kv.get("cross/k")[1], timeout=20)
    index, _ = a.kv.get("cross/", recurse=True)
    out: dict[str, Any] = {}

    def watch() -> None:
        out["answer"] = a.kv.get("cross/", recurse=True, index=index, wait="60s")

    thread = threading.Thread(target=watch)
    thread.start()
    thread.join(1.0)
    assert thread.is_alive()
    b.kv.put("cross/other", "2")
    thread.join(30)
    assert not thread.is_alive()
    new_index, entries = out["answer"]
    assert int(new_index) > int(index) and {e["Key"] for e in entries} == {"cross/k", "cross/other"}

    # a full-size value (512 KiB, too big for a bus message) reaches the other replica through the database
    big = b"x" * (512 * 1024)
    assert a.kv.put("cross/big", big) is True
    assert wait_until(lambda: (b.kv.get("cross/big")[1] or {}).get("Value") == big, timeout=20)

    # a lock taken on one replica holds on the other; its lock-delay, armed where it was destroyed, too
    holder = a.session.create(lock_delay=5, checks=[])
    rival = b.session.create(lock_delay=0, checks=[])
    assert a.kv.put("cross/lock", "a", acquire=holder) is True
    assert wait_until(lambda: (b.kv.get("cross/lock")[1] or {}).get("Session") == holder, timeout=20)
    assert b.kv.put("cross/lock", "b", acquire=rival) is False
    a.session.destroy(holder)
    assert wait_until(lambda: "Session" not in (b.kv.get("cross/lock")[1] or {"Session": 1}), timeout=20)
    assert b.kv.put("cross/lock", "b", acquire=rival) is False  # lock-delay, seen on the other replica
    assert wait_until(lambda: b.kv.put("cross/lock", "b", acquire=rival), timeout=20)


def test_both_replicas_reap_an_expired_session_once(pg_url: str, redis_url: str, accord_servers: AccordServers) -> None:
    first = accord_servers.start(pg_url, redis_url, expect_token=True)
    second = accord_servers.start(pg_url, redis_url)
    a, b = client_for(first, first.token), client_for(second, first.token)
    session = a.session.create(ttl=10, behavior="delete", lock_delay=0, checks=[])
    assert a.kv.put("reap/member", "x", acquire=session) is True
    assert wait_until(lambda: b.session.info(session)[1] is None, timeout=40)
    assert wait_until(lambda: a.kv.get("reap/member")[1] is None, timeout=10)
    with first.admin() as http:
        audit = http.get("/api/audit", params={"prefix": "registry/session/", "limit": 50})
    assert audit.status_code == 200, audit.text
    deletes = [row for row in audit.json() if row["op"] == "delete" and row["key"].endswith(session)]
    assert len(deletes) == 1  # the other replica's compare-and-set lost, and wrote nothing
