"""A listing's index counts deletes under it, also after a restart (tombstones are loaded from history)."""

from pathlib import Path

from tests.harness import AccordServer, running
from tests.server.consul.conftest import client_for


def test_a_delete_moves_the_prefix_index_and_a_restart_keeps_it(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path}/accord.db"
    with running(AccordServer(db_url, "", tmp_path / "one", expect_token=True)) as first:
        token = first.token
        c = client_for(first, token)
        c.kv.put("tomb/a", "1")
        c.kv.put("tomb/b", "1")
        before, _ = c.kv.get("tomb/", recurse=True)
        c.kv.delete("tomb/a")  # not the newest entry: only its tombstone can move the index
        after, entries = c.kv.get("tomb/", recurse=True)
        c.kv.put("elsewhere/k", "1")  # a write outside the prefix leaves its index alone
        unrelated, _ = c.kv.get("tomb/", recurse=True)
        assert int(after) > int(before) and [e["Key"] for e in entries] == ["tomb/b"]
        assert unrelated == after
    with running(AccordServer(db_url, "", tmp_path / "two")) as second:
        again, _ = client_for(second, token).kv.get("tomb/", recurse=True)
    assert again == after
