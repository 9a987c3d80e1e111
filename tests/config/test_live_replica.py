"""LiveConfig holds a replica (composition): raw key writes stay on the replica, out of the typed API."""

from __future__ import annotations

import accord
from accord.replica.replica import Replica
from accord.replica.status import ReplicaStatus
from accord.store.types import PutItem
from tests.config.procs_worker import Knobs


async def test_live_config_holds_a_replica_and_offers_no_raw_writes(sqlite_url: str) -> None:
    async with await accord.connect(sqlite_url, "", groups=[Knobs], extra_prefixes=("acl/",), use_env=False) as cfg:
        assert isinstance(cfg.replica, Replica) and not isinstance(cfg, Replica)
        assert cfg.replica.prefixes == ("config/", "schema/", "acl/")
        for raw in ("put_keys", "delete_key", "rollback_key"):
            assert not hasattr(cfg, raw), raw
        meta = await cfg.set("knobs.level", 3)
        entry = cfg.replica.entry("config/knobs/level")
        assert entry is not None and entry.value == b"3" and cfg.entry(entry.key) == entry
        assert cfg.last_revision == cfg.replica.last_revision == meta.mod_revision
        assert cfg.status() == cfg.replica.status() and isinstance(cfg.status(), ReplicaStatus)


async def test_a_raw_write_through_the_replica_reaches_the_typed_view(sqlite_url: str) -> None:
    """What the replica applies, LiveConfig resolves: the listeners connect the two."""
    async with await accord.connect(sqlite_url, "", groups=[Knobs], use_env=False) as cfg:
        seen: list[object] = []
        cfg.on_change("knobs.", lambda change: seen.append(change.new))
        await cfg.replica.put_keys([PutItem("config/knobs/level", b"9")])
        assert cfg.knobs.level == 9 and seen == [9]
