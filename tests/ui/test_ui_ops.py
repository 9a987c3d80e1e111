"""The UI's operational views in a real chromium against a real `accord serve` with Redis: tokens, services and
health, the fleet, events (with the DLQ) and the vault. Each view is read-only for a token without write rights.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import redis
from playwright.sync_api import Browser, BrowserContext, Page, expect

from accord.events import PipelineOptions, SamplingPolicy, start
from accord.events.keys import EventKeys
from accord.store.deployment import redis_keys_of
from accord.store.engine import create_engine
from accord.store.instances import InstanceRow, SqlInstanceStore
from accord.vault import Vault
from tests.harness import AccordServer, running
from tests.harness.redis_server import RedisServer
from tests.server.server_harness import create_token, declare
from tests.ui.test_ui import sign_in, snap

T = TypeVar("T")


@pytest.fixture(scope="module")
def ops_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('ui-ops') / 'accord.db'}"


@pytest.fixture(scope="module")
def ops_server(
    ops_db: str, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AccordServer]:
    if not redis_server.is_running():
        redis_server.start()
    with ThreadPoolExecutor(1) as pool:  # declare() runs its own event loop: Playwright's may be running here
        pool.submit(declare, ops_db, "").result()
    workdir = tmp_path_factory.mktemp("ui-ops-server")
    with running(AccordServer(ops_db, redis_server.url, workdir, expect_token=True)) as server:
        yield server


def in_thread(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end: Playwright's sync API keeps an event loop running in this thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def open_view(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Views").get_by_role("button", name=name).click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()


def new_page(browser: Browser) -> Page:
    return browser.new_context().new_page()


# ----- tokens ----------------------------------------------------------------------------------------


def test_tokens_list_create_with_the_secret_shown_once_and_copied_then_revoke(
    ops_server: AccordServer, browser: Browser
) -> None:
    assert ops_server.token
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    sign_in(page, ops_server, ops_server.token)
    open_view(page, "Tokens")
    tokens = page.get_by_role("list", name="Tokens")
    expect(tokens.locator('li[data-name="management"]')).to_be_visible()
    page.get_by_label("Name", exact=True).fill("ci-llm")
    page.get_by_label("Rules (one per line)").fill("config/llm/=write\nconfig/=read")
    page.get_by_label("Expires after (seconds)").fill("3600")
    page.get_by_role("button", name="Create token").click()
    created = page.locator("#token-created")
    expect(created).to_contain_text("Token ci-llm created")
    secret = page.locator("#token-secret").inner_text()
    assert secret.startswith("acc_")
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#token-copied")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    snap(page, "tokens")
    item = tokens.locator('li[data-name="ci-llm"]')
    expect(item).to_contain_text("config/llm/=write")
    assert secret not in item.inner_text()
    with ops_server.client() as client:  # the secret works, and the list never carries it
        assert client.get("/api/config", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
        listed = client.get("/api/tokens", headers={"Authorization": f"Bearer {ops_server.token}"}).text
        assert secret not in listed

    page.reload()  # shown once: after a reload the secret is gone from the page
    open_view(page, "Tokens")
    expect(page.locator("#token-created")).to_be_hidden()
    assert secret not in page.content()

    item = page.get_by_role("list", name="Tokens").locator('li[data-name="ci-llm"]')
    item.get_by_role("button", name="Revoke ci-llm").click()
    item.get_by_role("button", name="Cancel").click()
    with ops_server.client() as client:
        assert client.get("/api/config", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    item.get_by_role("button", name="Revoke ci-llm").click()
    item.get_by_role("button", name="Confirm revoke").click()
    expect(page.locator("#tokens-status")).to_have_text("Revoked ci-llm")
    expect(page.get_by_role("list", name="Tokens").locator('li[data-name="ci-llm"]')).to_have_count(0)
    with ops_server.client() as client:
        assert client.get("/api/config", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    context.close()


def test_a_token_cannot_mint_beyond_its_own_rules_and_the_refusal_shows_inline(
    ops_server: AccordServer, browser: Browser
) -> None:
    with ops_server.admin() as admin:
        delegate = create_token(admin, "delegate", ["acl/=write", "config/=read"])
    page = new_page(browser)
    sign_in(page, ops_server, delegate)
    open_view(page, "Tokens")
    page.get_by_label("Name", exact=True).fill("escalated")
    page.get_by_label("Rules (one per line)").fill("config/=write")
    page.get_by_role("button", name="Create token").click()
    error = page.locator("#token-error")
    expect(error).to_contain_text("config/=write")
    expect(page.locator("#token-created")).to_be_hidden()
    snap(page.locator("#tokens"), "token-refused")
    page.get_by_label("May reveal secrets").check()
    page.get_by_label("Rules (one per line)").fill("config/=read")
    page.get_by_role("button", name="Create token").click()
    expect(error).to_contain_text("reveal_secrets")
    with ops_server.admin() as admin:
        names = [token["name"] for token in admin.get("/api/tokens").json()]
        assert "escalated" not in names
        assert admin.delete("/api/tokens/delegate").status_code == 200
    page.context.close()


def test_a_token_without_acl_rights_has_no_tokens_view_and_a_reader_no_create_or_revoke(
    ops_server: AccordServer, browser: Browser
) -> None:
    with ops_server.admin() as admin:
        config_only = create_token(admin, "config-only", ["config/=read"])
        acl_reader = create_token(admin, "acl-reader", ["acl/=read", "config/=read"])
    page = new_page(browser)
    sign_in(page, ops_server, config_only)
    views = page.get_by_role("navigation", name="Views")
    expect(views.get_by_role("button", name="Tokens")).to_be_hidden()
    for hidden in ("Fleet", "Events", "Vault"):
        expect(views.get_by_role("button", name=hidden)).to_be_hidden()
    page.context.close()
    page = new_page(browser)
    sign_in(page, ops_server, acl_reader)
    open_view(page, "Tokens")
    expect(page.get_by_role("list", name="Tokens").locator('li[data-name="management"]')).to_be_visible()
    expect(page.get_by_role("button", name="Create token")).to_be_hidden()
    expect(page.get_by_role("button", name=re.compile("^Revoke"))).to_have_count(0)
    forced = page.evaluate(
        """async () => {
            const csrf = (await (await fetch("/ui/session")).json()).csrf;
            const body = JSON.stringify({name: "forced", rules: []});
            const headers = {"Content-Type": "application/json", "X-Accord-CSRF": csrf};
            return (await fetch("/api/tokens", {method: "POST", headers, body})).status;
        }"""
    )
    assert forced == 403
    page.context.close()


# ----- services and the fleet ------------------------------------------------------------------------


def consul_put(server: AccordServer, path: str, body: object | None = None) -> None:
    assert server.token
    with httpx.Client(base_url=server.url, headers={"X-Consul-Token": server.token}) as client:
        answer = client.put(path, content=json.dumps(body) if body is not None else None)
    assert answer.status_code == 200, answer.text


def test_services_show_instances_and_check_status_and_output_live(ops_server: AccordServer, page: Page) -> None:
    assert ops_server.token
    for n in (1, 2):
        consul_put(
            ops_server,
            "/v1/agent/service/register",
            {
                "Name": "payments",
                "ID": f"payments-{n}",
                "Port": 8080 + n,
                "Tags": ["v2"],
                "Check": {"CheckID": f"payments-{n}-ttl", "Name": "payments alive", "TTL": "300s"},
            },
        )
        consul_put(ops_server, f"/v1/agent/check/pass/payments-{n}-ttl?note=ok")
    consul_put(ops_server, "/v1/agent/check/fail/payments-2-ttl?note=database%20unreachable")
    sign_in(page, ops_server, ops_server.token)
    open_view(page, "Services")
    service = page.get_by_role("region", name="Service payments")
    bad = service.locator('article[data-instance="payments-2"]')
    expect(bad.locator("h4 .badge")).to_have_text("critical")
    expect(bad.locator('li[data-check="payments-2-ttl"] pre')).to_have_text("database unreachable")
    expect(service.locator('article[data-instance="payments-1"] h4 .badge')).to_have_text("passing")
    expect(bad).to_contain_text(":8082")
    snap(page, "services")
    consul_put(ops_server, "/v1/agent/check/pass/payments-2-ttl?note=recovered")  # elsewhere: no reload
    expect(bad.locator("h4 .badge")).to_have_text("passing", timeout=5000)
    expect(bad.locator('li[data-check="payments-2-ttl"] pre')).to_have_text("recovered")


def test_the_fleet_shows_applied_revisions_and_highlights_an_instance_behind(
    ops_server: AccordServer, ops_db: str, page: Page
) -> None:
    assert ops_server.token
    with ops_server.admin() as admin:
        assert admin.put("/api/config/llm.max_output", json={"input": "777"}).status_code == 200

    async def announce_behind() -> None:
        engine = create_engine(ops_db)
        try:
            now = datetime.now(UTC)
            await SqlInstanceStore(engine).upsert(
                InstanceRow("behind-1", "billing", "host-b", 4242, "0.9.0", 1, now, now)
            )
        finally:
            await engine.dispose()

    in_thread(announce_behind())
    sign_in(page, ops_server, ops_server.token)
    open_view(page, "Fleet")
    behind = page.get_by_role("list", name="Instances").locator('li[data-instance="behind-1"]')
    expect(behind).to_have_class(re.compile("behind"))
    expect(behind).to_contain_text("billing on host-b pid 4242 · behind by")
    expect(behind.locator("dd.applied")).to_have_text("1")
    lag = int(behind.locator("dd.lag").inner_text())
    assert lag >= 1
    server_rows = page.get_by_role("list", name="Instances").locator("li:not(.behind)")
    expect(server_rows.first).to_contain_text("up to date")  # the server itself, announced, not behind
    snap(page, "fleet")


# ----- events ----------------------------------------------------------------------------------------


def test_events_show_kept_per_rule_ratios_lag_the_chart_and_replay_the_dlq(
    ops_server: AccordServer, ops_db: str, redis_server: RedisServer, tmp_path: Path, page: Page
) -> None:
    assert ops_server.token
    policy = SamplingPolicy.of(sample_rate=0.5)

    async def produce() -> EventKeys:
        table = await start("shop", ops_db, "", tmp_path / "spool-a", policy=policy)  # straight to the table
        stream = await start("shop", ops_db, redis_server.url, tmp_path / "spool-b", policy=policy)  # no consumer
        try:
            for i in range(400):
                table.emit({"route": "/cart", "status": 500 if i % 10 == 0 else 200, "user": f"u{i}"})
            for _ in range(5):
                stream.emit({"route": "/slow", "status": 500})
            assert await table.flush() and await stream.flush()
        finally:
            await table.aclose()
            await stream.aclose()
        engine = create_engine(ops_db)
        try:
            return EventKeys.of(await redis_keys_of(engine))
        finally:
            await engine.dispose()

    keys = in_thread(produce())
    with redis.Redis.from_url(redis_server.url) as client:
        poison = json.dumps({"event_id": "p:1", "route": "/poison", "ts": time.time()})
        client.xadd(keys.dlq, {"e": poison, "id": "1-0", "deliveries": "5", "error": "ValueError: bad field"})
    sign_in(page, ops_server, ops_server.token)
    open_view(page, "Events")
    rules = page.get_by_role("region", name="Kept per rule")
    expect(rules.locator('tr[data-rule="error"] td').first).to_have_text("40")
    sampled = rules.locator('tr[data-rule="sampled"]')
    expect(sampled).to_contain_text("50.0 %")  # each kept one stands for 1/0.5 events
    stream = page.get_by_role("region", name="Stream and delivery")
    expect(stream.locator("dd.lag")).not_to_have_text("0")
    expect(stream.locator("dd.lag")).to_have_class(re.compile("attention"))
    chart = page.get_by_role("img", name=re.compile("Events per minute over the last hour"))
    expect(chart).to_have_attribute("aria-label", re.compile(r": (\d+) in all"))
    bars = [int(n) for n in chart.locator("rect").evaluate_all("rects => rects.map(r => r.dataset.count)")]
    assert sum(bars) >= 40 and bars[-1] + bars[-2] >= 40  # just now: in the last minute or two
    letters = page.get_by_role("list", name="Dead letters")
    expect(letters.locator("li")).to_have_count(1)
    expect(letters.locator("li")).to_contain_text("ValueError: bad field")
    snap(page, "events")
    replay = letters.get_by_role("button", name=re.compile("^Replay "))
    replay.focus()  # a keyboard user on the button: the 2 s re-read redraws the list and keeps the focus
    page.wait_for_timeout(2500)
    assert page.evaluate("document.activeElement.getAttribute('aria-label')").startswith("Replay ")
    page.keyboard.press("Enter")
    expect(page.locator("#dlq-status")).to_have_text("Replayed 1")
    expect(letters.locator("li")).to_have_count(0)
    with redis.Redis.from_url(redis_server.url) as client:
        assert client.xlen(keys.dlq) == 0
        entries = client.xrange(keys.stream)
        assert any(b"/poison" in fields[b"e"] for _id, fields in entries)  # back on the stream


def test_a_reader_of_events_sees_no_replay_and_a_forced_replay_is_refused(
    ops_server: AccordServer, redis_server: RedisServer, ops_db: str, browser: Browser
) -> None:
    with ops_server.admin() as admin:
        reader = create_token(admin, "events-reader", ["events/=read", "config/=read"])

    async def dlq_key() -> str:
        engine = create_engine(ops_db)
        try:
            return EventKeys.of(await redis_keys_of(engine)).dlq
        finally:
            await engine.dispose()

    with redis.Redis.from_url(redis_server.url) as client:
        client.xadd(in_thread(dlq_key()), {"e": "{}", "id": "2-0", "deliveries": "3", "error": "poison"})
    page = new_page(browser)
    sign_in(page, ops_server, reader)
    open_view(page, "Events")
    letters = page.get_by_role("list", name="Dead letters")
    expect(letters.locator("li").first).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Replay"))).to_have_count(0)
    forced = page.evaluate(
        """async () => {
            const csrf = (await (await fetch("/ui/session")).json()).csrf;
            const headers = {"Content-Type": "application/json", "X-Accord-CSRF": csrf};
            return (await fetch("/api/events/dlq/replay", {method: "POST", headers, body: "{}"})).status;
        }"""
    )
    assert forced == 403
    with ops_server.admin() as admin:
        assert admin.get("/api/events/dlq").json()  # still there
        assert admin.post("/api/events/dlq/replay", json={}).json()["replayed"] >= 1
    page.context.close()


def test_the_events_view_highlights_a_paused_consumer_and_the_bus_fallback_when_redis_dies(
    own_redis: RedisServer, tmp_path: Path, page: Page
) -> None:
    db = f"sqlite:///{tmp_path / 'events.db'}"
    with ThreadPoolExecutor(1) as pool:  # declare() runs its own event loop: not in Playwright's thread
        pool.submit(declare, db, "").result()
    with running(AccordServer(db, own_redis.url, tmp_path / "server", expect_token=True, args=("--events",))) as server:
        assert server.token
        sign_in(page, server, server.token)
        open_view(page, "Events")
        stream = page.get_by_role("region", name="Stream and delivery")
        expect(stream.locator("dd.consumer")).to_have_text("consuming")
        expect(stream.locator("dd.consumer")).not_to_have_class(re.compile("fallback"))
        expect(stream.locator("dd.bus")).not_to_have_class(re.compile("fallback"))
        own_redis.kill()  # the page keeps re-reading: the consumer pauses, the bus falls back
        expect(stream.locator("dd.consumer")).to_have_class(re.compile("fallback"), timeout=20_000)
        expect(stream.locator("dd.consumer")).to_contain_text("paused")
        expect(stream.locator("dd.bus")).to_contain_text("(fallback)", timeout=20_000)
        expect(page.locator("#events-status")).to_contain_text("Stats unavailable")
        expect(page.locator("#dlq-status")).to_contain_text("Unavailable")
        snap(page, "events-fallback")
        own_redis.start()
        expect(stream.locator("dd.consumer")).to_have_text("consuming", timeout=30_000)
        page.close()  # before the server stops: its open watch stream would hold the shutdown


# ----- the vault -------------------------------------------------------------------------------------


def test_the_vault_view_shows_mappings_per_type_expired_and_unmask_misses(
    ops_server: AccordServer, ops_db: str, page: Page, context: BrowserContext
) -> None:
    assert ops_server.token

    async def use_the_vault() -> None:
        async with await Vault.connect(ops_db, "", sweep=False) as vault:
            await vault.mask("mail ann@example.com and bob@example.com, card 4111 1111 1111 1111")
            await vault.unmask("who is EMAIL_999?")  # token-shaped, no mapping: a miss

    in_thread(use_the_vault())
    with ops_server.admin() as admin:
        numbers = admin.get("/api/vault/stats").json()
    assert numbers["mappings"].get("EMAIL") == 2 and numbers["unmask_misses"] >= 1, numbers
    sign_in(page, ops_server, ops_server.token)
    open_view(page, "Vault")
    table = page.get_by_role("region", name="Mappings per type")
    expect(table.locator('tr[data-type="EMAIL"] td')).to_have_text("2")
    facts = page.get_by_role("region", name="Expiry and misses")
    expect(facts.locator("dd.misses")).to_have_text(str(numbers["unmask_misses"]))
    expect(facts.locator("dd.expired")).to_have_text(str(numbers["expired"]))
    snap(page, "vault")
    assert "ann@example.com" not in page.content()


def test_the_new_views_fit_a_phone_width(ops_server: AccordServer, context: BrowserContext) -> None:
    assert ops_server.token
    page = context.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, ops_server, ops_server.token)
    widths = "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    for view in ("Tokens", "Services", "Fleet", "Events", "Vault"):
        open_view(page, view)
        page.wait_for_timeout(300)
        scroll, client = page.evaluate(widths)
        assert scroll <= client == 390, (view, scroll, client)
    snap(page, "phone-events")


def test_the_views_work_from_the_keyboard_alone(ops_server: AccordServer, page: Page) -> None:
    assert ops_server.token
    page.goto(f"{ops_server.url}/")
    expect(page.get_by_label("Token", exact=True)).to_be_focused()  # the field has the focus on load
    page.keyboard.type(ops_server.token)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()
    expect(page.get_by_role("heading", name="Settings")).to_be_focused()  # each view's heading takes the focus
    for view in ("Tokens", "Services", "Fleet", "Events", "Vault"):
        for _ in range(12):  # Shift+Tab from the heading back through the header's view buttons
            page.keyboard.press("Shift+Tab")
            if page.evaluate("document.activeElement.textContent") == view:
                break
        else:
            pytest.fail(f"no keyboard path to the {view} button: " + page.evaluate("document.activeElement.outerHTML"))
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name=view, exact=True)).to_be_focused()


def test_the_events_view_shows_each_producers_stage_and_highlights_its_fallback(
    ops_server: AccordServer, ops_db: str, own_redis: RedisServer, tmp_path: Path, page: Page
) -> None:
    """A producer running beside the page (its own thread and loop) loses its Redis for real: its row turns to
    the spool stage, highlighted as a fallback, read from the producers' reports (events/reports.py)."""
    assert ops_server.token
    stop = threading.Event()
    started = threading.Event()

    async def produce() -> None:
        options = PipelineOptions(flush_interval_s=0.01, spool_fsync="never", report_interval_s=0.2)
        policy = SamplingPolicy.of(sample_rate=1.0)
        # No database stage: none of its events reach the module's table, which other tests count (its report
        # still goes to the database, as every producer's with one does).
        pipeline = await start(
            "checkout", ops_db, own_redis.url, tmp_path / "spool", policy=policy, options=options, database_stage=False
        )
        started.set()
        try:
            while not stop.is_set():
                pipeline.emit({"route": "/pay", "status": 200})
                await asyncio.sleep(0.05)
        finally:
            await pipeline.aclose()

    with ThreadPoolExecutor(1) as pool:
        producing = pool.submit(asyncio.run, produce())
        try:
            assert started.wait(60), "the producer started"
            sign_in(page, ops_server, ops_server.token)
            open_view(page, "Events")
            producers = page.get_by_role("region", name="Producers")
            row = producers.locator("tr", has_text="checkout")
            expect(row.locator("td.stage")).to_have_text("redis", timeout=20_000)
            expect(row.locator("td.stage")).not_to_have_class(re.compile("fallback"))
            own_redis.kill()
            expect(row.locator("td.stage")).to_have_text("spool (fallback from redis)", timeout=30_000)
            expect(row.locator("td.stage")).to_have_class(re.compile("fallback"))
            snap(page, "events-producers")
        finally:
            stop.set()
            producing.result(timeout=60)
    expect(producers.locator("tr", has_text="checkout")).to_have_count(0, timeout=20_000)  # its row goes on close
