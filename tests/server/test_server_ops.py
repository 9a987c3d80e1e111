"""/readyz names degraded dependencies (503 while the database is down) and /metrics exposes what operators need."""

import uuid
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import AccordServer, PostgresDatabase, RedisServer, wait_until
from tests.server.server_harness import Serve


def _ready(server: AccordServer) -> httpx.Response:
    return httpx.get(f"{server.url}/readyz", timeout=30.0)


@dataclass(frozen=True)
class Scrape:
    """One /metrics answer. A sample that is not there raises: read as 0.0 it would pass `== 0` and `>= 0`."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    families: frozenset[str]

    def value(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        if key not in self.samples:
            known = sorted(f"{sample}{dict(found)}" for sample, found in self.samples if sample.startswith(name))
            raise AssertionError(f"no sample {name}{labels} in /metrics; samples of that name: {known}")
        return self.samples[key]

    def count(self, family: str, name: str, **labels: str) -> float:
        """A labelled counter that was never incremented has no sample yet, but its family must be declared."""
        assert family in self.families, f"metric family {family} is missing from /metrics"
        return self.samples.get((name, frozenset(labels.items())), 0.0)


def _samples(server: AccordServer) -> Scrape:
    answer = httpx.get(f"{server.url}/metrics", timeout=30.0)  # no token: scrapers have none
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    families = list(text_string_to_metric_families(answer.text))
    samples = {(sample.name, frozenset(sample.labels.items())): sample.value for f in families for sample in f.samples}
    return Scrape(samples, frozenset(family.name for family in families))


def _value(scrape: Scrape, name: str, **labels: str) -> float:
    return scrape.value(name, **labels)


def test_readyz_reports_the_database_down_with_503_and_recovers(
    serve: Serve, own_pg: PostgresDatabase, redis_url: str
) -> None:
    password = f"pw{uuid.uuid4().hex}"  # the test cluster trusts every login, so any password works
    server = serve(own_pg.url.replace("postgres@", f"postgres:{password}@"), redis_url)
    ready = _ready(server)
    assert ready.status_code == 200, ready.text
    assert ready.json()["ready"] is True
    database = ready.json()["dependencies"]["database"]
    assert (database["ok"], database["degraded"]) == (True, False)
    assert password not in ready.text, "readyz needs no token, so it must not show the database password"

    own_pg.server.kill()
    down = wait_until(lambda: (r := _ready(server)).status_code == 503 and r, timeout=60, what="readyz 503")
    assert down.json()["ready"] is False
    assert down.json()["dependencies"]["database"]["degraded"] is True
    assert httpx.get(f"{server.url}/healthz", timeout=30.0).status_code == 200
    with server.admin() as admin:
        assert admin.get("/api/config/llm.model").status_code == 200, "reads are served from memory"
        refused = admin.put("/api/config/llm.model", json={"value": "while-down"})
        assert refused.status_code == 503 and refused.json()["error"] == "StoreUnavailableError", refused.text

        own_pg.server.start()
        up = wait_until(lambda: (r := _ready(server)).status_code == 200 and r, timeout=60, what="readyz 200 again")
        assert up.json()["dependencies"]["database"]["degraded"] is False
        assert admin.put("/api/config/llm.model", json={"value": "after"}).status_code == 200
        assert admin.get("/api/config/llm.model").json()["value"] == "after"
    assert password not in httpx.get(f"{server.url}/metrics", timeout=30.0).text
    server.stop()
    assert password not in server.logs()


def test_readyz_and_metrics_show_redis_down_and_the_fallback(serve: Serve, pg_url: str, own_redis: RedisServer) -> None:
    server = serve(pg_url, own_redis.url)
    samples = _samples(server)
    assert _value(samples, "accord_fallback_active") == 0.0
    assert _value(samples, "accord_bus_mode", mode="redis") == 1.0

    own_redis.kill()
    wait_until(lambda: _value(_samples(server), "accord_fallback_active") == 1.0, timeout=60, what="fallback active")
    ready = _ready(server)
    assert ready.status_code == 200, "the database is fine, so the server stays ready"
    assert ready.json()["dependencies"]["redis"]["degraded"] is True
    with server.admin() as admin:
        assert admin.put("/api/config/llm.model", json={"value": "no-redis"}).status_code == 200

    own_redis.start()
    wait_until(lambda: _value(_samples(server), "accord_fallback_active") == 0.0, timeout=60, what="redis back")
    assert "redis" not in _ready(server).json()["dependencies"]


def test_metrics_count_requests_writes_conflicts_and_propagation_lag(serve: Serve, pg_url: str, redis_url: str) -> None:
    a = serve(pg_url, redis_url)
    b = serve(pg_url, redis_url, declare_first=False)
    with a.admin() as admin:
        for n in range(3):
            assert admin.put("/api/config/llm.model", json={"value": f"m{n}-{uuid.uuid4().hex}"}).status_code == 200
        conflict = admin.put("/api/config/llm.model", json={"value": "late", "expect_version": 1})
        assert conflict.status_code == 409
        assert admin.post(
            "/api/config/import", json={"settings": {"llm.max_output": 5, "llm.temperature": 1.5}}
        ).is_success

    on_a = _samples(a)
    assert _value(on_a, "accord_http_requests_total", method="PUT", route="/api/config/{path}", status="200") == 3
    assert _value(on_a, "accord_http_requests_total", method="PUT", route="/api/config/{path}", status="409") == 1
    assert _value(on_a, "accord_writes_total", action="set") == 3
    assert _value(on_a, "accord_writes_total", action="import") == 2
    assert _value(on_a, "accord_conflicts_total") == 1
    assert _value(on_a, "accord_bus_mode", mode="redis") == 1.0
    assert _value(on_a, "accord_bus_mode", mode="postgres") == 0.0
    assert _value(on_a, "accord_fallback_active") == 0.0
    assert _value(on_a, "accord_propagation_lag_seconds_count") == 0, "A applied only its own writes"

    # B applied A's five changes from the bus: each is one observation of commit-to-apply lag
    on_b = wait_until(
        lambda: (s := _samples(b)) and _value(s, "accord_propagation_lag_seconds_count") >= 5 and s,
        what="propagation lag observed on B",
    )
    assert _value(on_b, "accord_propagation_lag_seconds_sum") > 0.0, "five changes cannot take zero seconds in all"
    assert _value(on_b, "accord_propagation_lag_seconds_bucket", le="+Inf") >= 5
    assert on_b.count("accord_writes", "accord_writes_total", action="set") == 0, "B wrote nothing itself"
