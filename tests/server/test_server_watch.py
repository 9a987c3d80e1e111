"""GET /api/watch: Server-Sent Events of changes, resumable by revision (Last-Event-ID or ?from_revision=)."""

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.harness import AccordServer
from tests.server.server_harness import SseEvent, collect_until, revision, sse_events


@pytest.fixture
def admin(module_server: AccordServer) -> Iterator[httpx.Client]:
    with module_server.admin() as client:
        yield client


def _put(admin: httpx.Client, path: str, value: object) -> int:
    answer = admin.put(f"/api/config/{path}", json={"value": value})
    assert answer.status_code == 200, answer.text
    mod_revision: int = answer.json()["mod_revision"]
    return mod_revision


def _is(path: str, value: object) -> Callable[[SseEvent], bool]:
    return lambda event: event.data["path"] == path and event.data["value"] == value


def test_the_stream_carries_puts_and_deletes_as_they_happen(admin: httpx.Client) -> None:
    model = f"m-{uuid.uuid4().hex}"
    with admin.stream("GET", "/api/watch") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = sse_events(stream)
        put_revision = _put(admin, "llm.model", model)
        (put,) = collect_until(events, _is("llm.model", model))
        assert (put.id, put.event) == (put_revision, "put")
        assert put.data["revision"] == put_revision and put.data["effective"] == model

        deleted = admin.delete("/api/config/llm.model")
        assert deleted.status_code == 200
        delete = collect_until(events, lambda e: e.event == "delete")[-1]
        assert delete.data["path"] == "llm.model" and delete.data["value"] is None
        assert delete.data["effective"] == "gpt-4o"  # back to the default
        newest = admin.get("/api/config/llm.model/history").json()[0]
        assert newest["op"] == "delete" and delete.id == newest["revision"] > put_revision


def test_secrets_are_masked_in_the_stream(admin: httpx.Client) -> None:
    plain = f"sk-{uuid.uuid4().hex}"
    with admin.stream("GET", "/api/watch") as stream:
        _put(admin, "llm.openai_api_key", plain)
        event = collect_until(sse_events(stream), lambda e: e.data["path"] == "llm.openai_api_key")[-1]
    assert "****" in event.data["value"] and plain not in repr(event)


def test_last_event_id_replays_what_was_missed_then_goes_live(admin: httpx.Client) -> None:
    first = f"a-{uuid.uuid4().hex}"
    with admin.stream("GET", "/api/watch") as stream:
        _put(admin, "embedding.model", first)
        seen = collect_until(sse_events(stream), _is("embedding.model", first))[-1]
    assert seen.id is not None

    missed = [_put(admin, "embedding.model", f"b-{uuid.uuid4().hex}"), _put(admin, "embedding.batch_size", 321)]
    last = f"c-{uuid.uuid4().hex}"
    with admin.stream("GET", "/api/watch", headers={"Last-Event-ID": str(seen.id)}) as stream:
        events = sse_events(stream)
        replayed = collect_until(events, lambda e: e.id == missed[-1])
        live_revision = _put(admin, "embedding.model", last)
        live = collect_until(events, _is("embedding.model", last))
    ids = [e.id for e in replayed + live]
    assert [e.id for e in replayed] == missed, "exactly the missed changes, in order, nothing before them"
    assert ids == sorted(set(ids)), f"duplicates or disorder: {ids}"
    assert live[-1].id == live_revision


def test_from_revision_replays_history_after_it(admin: httpx.Client) -> None:
    start = revision(admin)
    written = [_put(admin, "llm.max_output", n) for n in (11, 12, 13)]
    with admin.stream("GET", "/api/watch", params={"from_revision": start}) as stream:
        replayed = collect_until(sse_events(stream), lambda e: e.id == written[-1])
    assert [e.id for e in replayed] == written
    assert [e.data["value"] for e in replayed] == [11, 12, 13]

    middle = written[0]
    with admin.stream("GET", "/api/watch", params={"from_revision": middle}) as stream:
        replayed = collect_until(sse_events(stream), lambda e: e.id == written[-1])
    assert [e.id for e in replayed] == written[1:]


def test_a_watcher_on_another_server_sees_the_change(
    module_server: AccordServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = AccordServer(module_server.db_url, module_server.redis_url, tmp_path_factory.mktemp("watch-peer")).start()
    value = f"peer-{uuid.uuid4().hex}"
    try:
        with other.client(module_server.token) as peer, peer.stream("GET", "/api/watch") as stream:
            with module_server.admin() as admin:
                written = _put(admin, "llm.model", value)
            event = collect_until(sse_events(stream), _is("llm.model", value))[-1]
        assert event.id == written
    finally:
        other.stop()
