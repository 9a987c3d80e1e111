"""Per-prefix indexes over a real replica: deletes move them, and a full reload is a floor under them."""

from accord.registry.kv import KvService
from accord.replica.replica import Replica


async def test_a_delete_moves_the_prefix_index_but_not_other_prefixes(sqlite_url: str) -> None:
    async with await Replica.from_url(sqlite_url, "", prefixes=("kv/",), actor="t", watch=False) as replica:
        kv = KvService(replica)
        await kv.start()
        await kv.put("p/a", b"1")
        await kv.put("p/b", b"1")
        await kv.put("q/c", b"1")
        before_p, before_q = kv.prefix_index("p/"), kv.prefix_index("q/")
        assert await kv.delete("p/a") is True
        assert kv.prefix_index("p/") == replica.last_revision > before_p
        assert kv.prefix_index("q/") == before_q
        assert kv.global_index() == replica.last_revision
        assert kv.prefix_index("never/") == kv.global_index()  # nothing ever lived there: the table's index
        kv.close()


async def test_after_a_full_reload_no_index_is_below_the_reload_revision(sqlite_url: str) -> None:
    writer = await Replica.from_url(sqlite_url, "", prefixes=("kv/",), actor="w", watch=False)
    reader = await Replica.from_url(sqlite_url, "", prefixes=("kv/",), actor="r", watch=False)
    async with writer, reader:
        kv_w, kv_r = KvService(writer), KvService(reader)
        await kv_r.start()
        await kv_w.put("x/a", b"1")
        await kv_w.put("x/b", b"1")
        await kv_w.delete("x/b")
        deleted_at = writer.last_revision
        await writer.store.compact(deleted_at + 1)  # the reader's replay range is gone: it must reload
        await reader.resync()
        assert reader.last_revision == deleted_at
        assert kv_r.prefix_index("x/") >= deleted_at  # it never saw the delete; the reload floor covers it
        item = kv_r.get("x/a")
        assert item is not None and item.raw == b"1" and kv_r.get("x/b") is None
