"""The admin UI in a real chromium against a real `accord serve`: sign-in, ACL, editing, CSRF, CSP, phone width."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Response, expect

from tests.cli.cli_helpers import run_cli
from tests.harness import AccordServer
from tests.server.server_harness import create_token

SECRET_VALUE = "sk-ui-test-never-shown-0123456789"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "ui"


def snap(target: Page | Locator, name: str, *, full: bool = True) -> None:
    """With ACCORD_UI_SCREENSHOTS=1, save docs/ui/<name>.png (how the screenshots in docs/ui.md are made)."""
    if os.environ.get("ACCORD_UI_SCREENSHOTS") == "1":
        path = str(SCREENSHOTS / f"{name}.png")
        if isinstance(target, Page):
            target.screenshot(path=path, full_page=full)
        else:
            target.screenshot(path=path)


def body_of(response: Response) -> str:
    """A response's body; the watch stream (which ends only with the page) as its change notices so far."""
    if "/api/watch" in response.url:
        return ""  # its events name a path and a revision, never a value (docs/ui.md, Live)
    if 300 <= response.status < 400:
        return response.headers.get("location", "")  # a redirect has no body
    return response.text()


def sign_in(page: Page, server: AccordServer, token: str) -> None:
    page.goto(f"{server.url}/")
    page.get_by_label("Token", exact=True).fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()


def setting_card(page: Page, path: str) -> Locator:
    return page.locator(f'article[data-path="{path}"]')


def stored(server: AccordServer, path: str) -> dict[str, Any]:
    with server.admin() as admin:
        answer = admin.get(f"/api/config/{path}")
    assert answer.status_code == 200, answer.text
    row: dict[str, Any] = answer.json()
    return row


def put_as_admin(server: AccordServer, path: str, text: str) -> None:
    """A change made elsewhere: another client, not the page."""
    with server.admin() as admin:
        answer = admin.put(f"/api/config/{path}", json={"input": text})
    assert answer.status_code == 200, answer.text


def put_from_page(page: Page, path: str, text: str, *, csrf: str | None) -> int:
    """A write the page's own origin forces with fetch (the cookie rides along), with or without the CSRF header."""
    script = """async ([path, text, csrf]) => {
        const headers = {"Content-Type": "application/json"};
        if (csrf !== null) headers["X-Accord-CSRF"] = csrf;
        const body = JSON.stringify({input: text});
        return (await fetch(`/api/config/${path}`, {method: "PUT", headers, body})).status;
    }"""
    status: int = page.evaluate(script, [path, text, csrf])
    return status


def page_csrf(page: Page) -> str:
    csrf: str = page.evaluate('async () => (await (await fetch("/ui/session")).json()).csrf')
    return csrf


def test_root_redirects_to_the_ui_which_has_a_strict_csp_and_no_inline_script(ui_server: AccordServer) -> None:
    with ui_server.client() as client:
        root = client.get("/")
        assert root.status_code == 307 and root.headers["location"] == "/ui/"
        html = client.get("/ui/")
        assets = [client.get("/ui/static/app.js"), client.get("/ui/static/app.css")]
        assert client.get("/ui/static/index.html").status_code == 404  # a fixed list of assets, nothing else
    for answer in (html, *assets):
        assert answer.status_code == 200
        csp = answer.headers["content-security-policy"]
        for directive in ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"):
            assert directive in csp, csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert answer.headers["x-frame-options"] == "DENY"
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html.text, re.S | re.I)
    assert scripts and all('src="/ui/static/' in attrs and not body.strip() for attrs, body in scripts)
    assert not re.search(r"\son[a-z]+\s*=", html.text, re.I), "an inline event handler"
    assert "<style" not in html.text.lower() and "style=" not in html.text.lower()
    assert "http://" not in html.text and "https://" not in html.text  # nothing from a CDN


def test_a_bad_token_is_refused_and_a_good_one_signs_in_with_a_strict_httponly_cookie(
    ui_server: AccordServer, page: Page, context: BrowserContext
) -> None:
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{ui_server.url}/")
    expect(page).to_have_url(f"{ui_server.url}/ui/")
    expect(page.get_by_label("Token", exact=True)).to_be_visible()
    snap(page, "sign-in")
    page.get_by_label("Token", exact=True).fill("acc_not-a-token-anyone-issued-0000000000")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").filter(has_text="unknown")).to_be_visible()
    assert context.cookies() == []

    assert ui_server.token
    sign_in(page, ui_server, ui_server.token)
    expect(page.get_by_text("Signed in as management")).to_be_visible()
    expect(setting_card(page, "llm.model")).to_be_visible()
    snap(page, "settings", full=False)
    assert ui_server.token not in page.url
    (cookie,) = context.cookies()
    assert cookie["name"] == "accord_session" and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # the page's script cannot read the session
    # only the 401 of the refused token (and the "not signed in" check on load) may show in the console
    assert all("401" in text for text in problems), "\n".join(problems)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Token", exact=True)).to_be_visible()
    assert context.cookies() == []


def test_edit_save_and_see_the_new_value_and_version(ui_server: AccordServer, page: Page) -> None:
    assert ui_server.token
    before = stored(ui_server, "llm.max_output")
    sign_in(page, ui_server, ui_server.token)
    page.get_by_label("Search", exact=True).fill("max_output")
    expect(setting_card(page, "llm.model")).to_be_hidden()
    card = setting_card(page, "llm.max_output")
    card.get_by_label("llm.max_output", exact=True).fill("4096")
    card.get_by_role("button", name="Save").click()
    expect(card.get_by_role("status")).to_have_text(f"Saved: version {before['version'] + 1}")
    expect(card.locator("dd.value")).to_have_text("4096")
    expect(card.locator("dt:text-is('Source') + dd")).to_have_text("stored")
    after = stored(ui_server, "llm.max_output")
    assert after["value"] == 4096 and after["version"] == before["version"] + 1


def test_an_invalid_value_is_refused_inline_naming_the_rule(ui_server: AccordServer, page: Page) -> None:
    assert ui_server.token
    before = stored(ui_server, "embedding.batch_size")
    sign_in(page, ui_server, ui_server.token)
    card = setting_card(page, "embedding.batch_size")
    card.get_by_label("embedding.batch_size", exact=True).fill("0")
    card.get_by_role("button", name="Save").click()
    expect(card.get_by_role("alert")).to_contain_text(">= 1")
    expect(card.get_by_role("alert")).to_contain_text("embedding.batch_size")
    snap(card, "validation-error")
    assert stored(ui_server, "embedding.batch_size") == before


def test_a_conflict_shows_both_values(ui_server: AccordServer, page: Page) -> None:
    assert ui_server.token
    sign_in(page, ui_server, ui_server.token)
    card = setting_card(page, "llm.model")
    card.get_by_label("llm.model", exact=True).fill("my-model")  # the admin is typing (the field has focus)...
    put_as_admin(ui_server, "llm.model", "theirs-model")  # ...when someone else saves
    version = stored(ui_server, "llm.model")["version"]
    expect(card.locator(".elsewhere")).to_have_text(f"Changed elsewhere: now version {version}")
    expect(card.get_by_label("llm.model", exact=True)).to_have_value("my-model")  # their text is kept
    card.get_by_role("button", name="Save").click()
    conflict = card.locator(".conflict")
    expect(conflict).to_contain_text(f"Stored now: theirs-model (version {version})")
    expect(conflict).to_contain_text("Yours: my-model")
    assert stored(ui_server, "llm.model")["value"] == "theirs-model"
    card.get_by_role("button", name="Save").click()  # saving again, knowingly, replaces it
    expect(card.get_by_role("status")).to_have_text(f"Saved: version {version + 1}")
    assert stored(ui_server, "llm.model")["value"] == "my-model"


def test_a_read_only_token_sees_no_edit_controls_and_a_forced_write_is_refused(
    ui_server: AccordServer, viewer_token: str, page: Page
) -> None:
    put_as_admin(ui_server, "llm.temperature", "0.3")
    put_as_admin(ui_server, "llm.temperature", "0.4")
    before = stored(ui_server, "llm.temperature")
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, ui_server, viewer_token)
    card = setting_card(page, "llm.temperature")
    expect(card).to_be_visible()
    snap(page, "phone-read-only", full=False)
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    expect(page.get_by_role("textbox", name="llm.temperature")).to_have_count(0)
    card.get_by_role("button", name="History").click()
    expect(card.locator("li[data-version]")).to_have_count(before["version"])
    expect(page.get_by_role("button", name=re.compile("Rollback"))).to_have_count(0)
    assert put_from_page(page, "llm.temperature", "1.5", csrf=page_csrf(page)) == 403
    assert stored(ui_server, "llm.temperature") == before


def test_a_change_without_the_csrf_header_is_refused(
    ui_server: AccordServer, page: Page, context: BrowserContext
) -> None:
    assert ui_server.token
    before = stored(ui_server, "llm.temperature")
    sign_in(page, ui_server, ui_server.token)
    assert put_from_page(page, "llm.temperature", "1.5", csrf=None) == 403
    assert put_from_page(page, "llm.temperature", "1.5", csrf="0" * 64) == 403
    (cookie,) = context.cookies()
    with httpx.Client(base_url=ui_server.url, cookies={cookie["name"]: cookie["value"]}) as forged:
        answer = forged.put("/api/config/llm.temperature", json={"input": "1.5"})
        assert answer.status_code == 403 and "X-Accord-CSRF" in answer.json()["detail"]
        assert forged.get("/api/config").status_code == 403  # reads through the cookie need it too
    assert stored(ui_server, "llm.temperature") == before
    assert put_from_page(page, "llm.temperature", "1.5", csrf=page_csrf(page)) == 200  # with it, the write goes


def test_sign_in_refuses_another_origin_and_a_form_post(ui_server: AccordServer) -> None:
    assert ui_server.token
    with ui_server.client() as client:
        evil = client.post("/ui/session", json={"token": ui_server.token}, headers={"Origin": "https://evil.example"})
        assert evil.status_code == 403 and "set-cookie" not in evil.headers
        form = client.post("/ui/session", data={"token": ui_server.token})
        assert form.status_code == 422 and "set-cookie" not in form.headers


def test_a_secret_is_masked_until_an_explicit_reveal_by_a_token_with_the_right(
    ui_server: AccordServer, page: Page
) -> None:
    assert ui_server.token
    with ui_server.admin() as admin:
        assert admin.put("/api/config/llm.openai_api_key", json={"input": SECRET_VALUE}).status_code == 200
    bodies: list[str] = []
    page.on("response", lambda response: bodies.append(body_of(response)))
    sign_in(page, ui_server, ui_server.token)
    card = setting_card(page, "llm.openai_api_key")
    expect(card.locator("dt:text-is('Source') + dd")).to_have_text("stored")
    expect(card.get_by_label("llm.openai_api_key", exact=True)).to_have_value("")
    assert SECRET_VALUE not in page.content()
    assert not any(SECRET_VALUE in body for body in bodies)  # before the click: in no answer at all

    with page.expect_response(lambda response: "reveal=true" in response.url) as revealed:
        card.get_by_role("button", name="Reveal llm.openai_api_key").click()
    assert SECRET_VALUE in revealed.value.text()  # the value travels only in the answer the click asked for
    expect(card.locator(".secret-text")).to_have_text(SECRET_VALUE)
    snap(card, "secret-revealed")
    card.get_by_role("button", name="Hide llm.openai_api_key").click()
    expect(card.locator(".secret-text")).not_to_have_text(SECRET_VALUE)
    assert SECRET_VALUE not in page.content()


def test_a_token_without_the_reveal_right_never_receives_the_secret(
    ui_server: AccordServer, viewer_token: str, browser: Browser
) -> None:
    assert ui_server.token
    with ui_server.admin() as admin:
        assert admin.put("/api/config/llm.openai_api_key", json={"input": SECRET_VALUE}).status_code == 200
        writer = create_token(admin, "no-reveal-writer", ["config/=write"])  # may write, may not reveal
    for secret in (writer, viewer_token):
        bodies: list[str] = []
        fresh = browser.new_context().new_page()  # its own profile: no cookie of the other token
        fresh.on("response", lambda response, seen=bodies: seen.append(body_of(response)))
        sign_in(fresh, ui_server, secret)
        card = setting_card(fresh, "llm.openai_api_key")
        expect(card).to_be_visible()
        expect(card.get_by_role("button", name=re.compile("Reveal"))).to_have_count(0)
        card.get_by_role("button", name="History").click()
        expect(card.locator("li[data-version]").first).to_be_visible()
        forced = fresh.evaluate(
            """async (csrf) => {
                const url = "/api/config/llm.openai_api_key?reveal=true";
                const answer = await fetch(url, {headers: {"X-Accord-CSRF": csrf}});
                return [answer.status, await answer.text()];
            }""",
            page_csrf(fresh),
        )
        assert forced[0] == 403 and SECRET_VALUE not in forced[1]
        assert SECRET_VALUE not in fresh.content()
        assert SECRET_VALUE not in fresh.evaluate("document.documentElement.outerHTML")
        assert not any(SECRET_VALUE in body for body in bodies)
        fresh.context.close()
    with ui_server.admin() as admin:
        assert admin.delete("/api/tokens/no-reveal-writer").status_code == 200


def test_phone_width_has_no_horizontal_scroll(ui_server: AccordServer, context: BrowserContext) -> None:
    assert ui_server.token
    page = context.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, ui_server, ui_server.token)
    expect(setting_card(page, "llm.openai_api_key")).to_be_visible()
    widths = "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    settings_widths = page.evaluate(widths)
    assert settings_widths[0] <= settings_widths[1] == 390, settings_widths
    page.get_by_role("navigation", name="Views").get_by_role("button", name="Audit").click()
    expect(page.get_by_role("list", name="Audit records").locator("li").first).to_be_visible()
    audit_widths = page.evaluate(widths)
    assert audit_widths[0] <= audit_widths[1] == 390, audit_widths


def test_history_shows_the_versions_and_rollback_asks_first(ui_server: AccordServer, page: Page) -> None:
    assert ui_server.token
    put_as_admin(ui_server, "embedding.model", "model-a")
    first = stored(ui_server, "embedding.model")["version"]
    put_as_admin(ui_server, "embedding.model", "model-b")
    sign_in(page, ui_server, ui_server.token)
    card = setting_card(page, "embedding.model")
    card.get_by_role("button", name="History").click()
    old = card.locator(f'li[data-version="{first}"]')
    expect(old.locator("p.value")).to_have_text("model-a")
    expect(card.locator(f'li[data-version="{first + 1}"] p.was')).to_have_text("was: model-a")
    card.get_by_role("button", name=f"Rollback embedding.model to version {first}").click()
    card.get_by_role("button", name="Cancel").click()  # asking first: cancelling changes nothing
    assert stored(ui_server, "embedding.model")["value"] == "model-b"
    card.get_by_role("button", name=f"Rollback embedding.model to version {first}").click()
    snap(card, "history-rollback")
    card.get_by_role("button", name="Confirm rollback").click()
    expect(card.get_by_role("status")).to_have_text(f"Rolled back to version {first}: now version {first + 2}")
    expect(card.locator("dd.value")).to_have_text("model-a")
    after = stored(ui_server, "embedding.model")
    assert after["value"] == "model-a" and after["version"] == first + 2


def test_history_diffs_any_two_versions(ui_server: AccordServer, page: Page) -> None:
    assert ui_server.token
    for value in ("diff-one", "diff-two", "diff-three"):
        put_as_admin(ui_server, "llm.model", value)
    newest = stored(ui_server, "llm.model")["version"]
    sign_in(page, ui_server, ui_server.token)
    card = setting_card(page, "llm.model")
    card.get_by_role("button", name="History").click()
    compare = card.get_by_role("form", name="Compare versions of llm.model")
    expect(compare.get_by_label("From version", exact=True)).to_have_value(str(newest - 1))  # last change
    expect(compare.get_by_label("To version", exact=True)).to_have_value(str(newest))
    compare.get_by_label("From version", exact=True).select_option(str(newest - 2))
    compare.get_by_role("button", name="Show diff").click()
    diff = compare.get_by_role("list", name=f"Diff of llm.model from version {newest - 2} to version {newest}")
    expect(diff.locator("li.diff-removed")).to_have_text("-diff-one")
    expect(diff.locator("li.diff-added")).to_have_text("+diff-three")
    compare.get_by_label("To version", exact=True).select_option(str(newest - 2))
    compare.get_by_role("button", name="Show diff").click()
    expect(compare.get_by_text("identical")).to_be_visible()
    snap(card, "history-diff")


def test_a_profile_value_is_set_and_unset_and_a_stored_value_unset(ui_server: AccordServer, page: Page) -> None:
    assert ui_server.token
    put_as_admin(ui_server, "llm.org_id", "org-ui-unset")
    sign_in(page, ui_server, ui_server.token)
    card = setting_card(page, "embedding.model")
    card.get_by_role("button", name="Profiles of embedding.model").click()
    card.get_by_label("Profile", exact=True).fill("staging")
    card.get_by_role("button", name="Show").click()
    expect(card.locator(".profile-value")).to_contain_text("Not set in staging")
    card.get_by_label("embedding.model in staging", exact=True).fill("stage-model")
    card.get_by_role("button", name="Save embedding.model in staging").click()
    expect(card.locator(".profile-value .value")).to_have_text("In staging: stage-model (version 1)")
    with ui_server.admin() as admin:
        assert admin.get("/api/config/embedding.model?env=staging").json()["value"] == "stage-model"
    card.get_by_role("button", name="Unset embedding.model in staging").click()
    expect(card.locator(".profile-value")).to_contain_text("Not set in staging")
    with ui_server.admin() as admin:
        assert admin.get("/api/config/embedding.model?env=staging").status_code == 404
    snap(card, "profile")

    secret_card = setting_card(page, "llm.org_id")
    secret_card.get_by_role("button", name="Unset llm.org_id").click()
    secret_card.get_by_role("button", name="Cancel").click()
    assert stored(ui_server, "llm.org_id")["source"] == "stored"
    secret_card.get_by_role("button", name="Unset llm.org_id").click()
    secret_card.get_by_role("button", name="Confirm unset").click()
    expect(secret_card.get_by_role("status").filter(has_text="Unset")).to_have_text("Unset: now default")
    expect(secret_card.locator("dt:text-is('Source') + dd")).to_have_text("default")
    assert stored(ui_server, "llm.org_id")["source"] == "default"
    expect(secret_card.get_by_role("button", name="Unset llm.org_id")).to_have_count(0)


def test_a_read_only_token_sees_profiles_without_edit_controls(
    ui_server: AccordServer, viewer_token: str, page: Page
) -> None:
    sign_in(page, ui_server, viewer_token)
    expect(page.get_by_role("button", name=re.compile("^Unset"))).to_have_count(0)
    card = setting_card(page, "embedding.model")
    card.get_by_role("button", name="Profiles of embedding.model").click()
    card.get_by_label("Profile", exact=True).fill("staging")
    card.get_by_role("button", name="Show").click()
    expect(card.locator(".profile-value")).to_contain_text(re.compile("may not read|Not set in staging"))
    expect(card.get_by_role("textbox", name="embedding.model in staging")).to_have_count(0)
    expect(card.get_by_role("button", name=re.compile("^Save"))).to_have_count(0)


def test_a_change_made_elsewhere_appears_without_a_reload(ui_server: AccordServer, page: Page) -> None:
    assert ui_server.token
    sign_in(page, ui_server, ui_server.token)
    card = setting_card(page, "llm.temperature")
    expect(card).to_be_visible()
    value = "1.25" if stored(ui_server, "llm.temperature")["value"] != 1.25 else "1.75"
    page.wait_for_function("() => document.querySelector('#settings-status').textContent.includes('revision')")
    put_as_admin(ui_server, "llm.temperature", value)
    version = stored(ui_server, "llm.temperature")["version"]
    expect(card.locator("dd.value")).to_have_text(value)  # event-driven: the watch stream, no reload
    expect(card.locator("dt:text-is('Version') + dd")).to_have_text(str(version))


def test_a_change_made_with_the_cli_appears_in_an_open_page_within_2_s(ui_server: AccordServer, page: Page) -> None:
    assert ui_server.token
    sign_in(page, ui_server, ui_server.token)
    card = setting_card(page, "llm.max_output")
    page.wait_for_function("() => document.querySelector('#settings-status').textContent.includes('revision')")
    value = "2222" if stored(ui_server, "llm.max_output")["value"] != 2222 else "3333"
    run_cli("config", "set", "llm.max_output", value, db=ui_server.db_url)  # another process, on the database
    done = time.monotonic()
    expect(card.locator("dd.value")).to_have_text(value, timeout=2000)
    assert time.monotonic() - done < 2.0


def test_the_session_expires_with_the_token_and_ends_when_it_is_revoked(
    ui_server: AccordServer, page: Page, context: BrowserContext
) -> None:
    with ui_server.admin() as admin:
        answer = admin.post("/api/tokens", json={"name": "brief", "rules": ["config/=read"], "ttl_seconds": 600})
        assert answer.status_code == 201, answer.text
        secret = answer.json()["secret"]
        signed_at = time.time()
        sign_in(page, ui_server, secret)
        (cookie,) = context.cookies()
        assert signed_at + 500 < cookie["expires"] <= signed_at + 601  # the cookie lasts as long as the token
        assert admin.delete("/api/tokens/brief").status_code == 200
    page.reload()
    expect(page.get_by_label("Token", exact=True)).to_be_visible()  # revoked: the cookie no longer signs in
    assert page.evaluate('async () => (await fetch("/ui/session")).status') == 401


def test_the_audit_view_filters_and_pages(ui_server: AccordServer, page: Page) -> None:
    assert ui_server.token
    with ui_server.admin() as admin:  # more than one page (50) of writes to one setting
        for n in range(55):
            assert admin.put("/api/config/llm.max_output", json={"input": str(100 + n)}).status_code == 200
    put_as_admin(ui_server, "embedding.batch_size", "77")
    sign_in(page, ui_server, ui_server.token)
    page.get_by_role("navigation", name="Views").get_by_role("button", name="Audit").click()
    records = page.get_by_role("list", name="Audit records").locator("li")
    expect(records.first).to_contain_text("embedding.batch_size: ")
    expect(records.first).to_contain_text("→ 77")
    page.get_by_label("Prefix", exact=True).fill("config/llm/max_output")
    page.get_by_role("button", name="Filter").click()
    expect(records.first).to_contain_text("llm.max_output: 153 → 154")
    expect(records).to_have_count(50)
    snap(page, "audit", full=False)
    page.get_by_role("button", name="Older").click()
    expect(records.nth(50)).to_be_visible()
    texts = records.all_inner_texts()
    assert all("llm.max_output" in text for text in texts)
    revisions = [int(r) for r in records.evaluate_all("items => items.map(item => item.dataset.revision)")]
    assert revisions == sorted(revisions, reverse=True) and len(set(revisions)) == len(revisions)  # no repeats
    page.get_by_label("Actor", exact=True).fill("nobody-wrote-this")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No records match.")).to_be_visible()


def test_the_ui_json_routes_check_the_acl_and_name_a_missing_redis(ui_server: AccordServer, viewer_token: str) -> None:
    """GET /api/services, /api/events/dlq[/replay], /api/vault/stats: the API's ACL; no Redis, no DLQ, said so."""
    assert ui_server.token
    with ui_server.client() as client:
        viewer = {"Authorization": f"Bearer {viewer_token}"}
        admin = {"Authorization": f"Bearer {ui_server.token}"}
        assert client.get("/api/vault/stats", headers=viewer).status_code == 403
        assert client.get("/api/vault/stats?scope=team-a", headers=viewer).status_code == 403
        assert client.get("/api/events/dlq", headers=viewer).status_code == 403
        assert client.post("/api/events/dlq/replay", json={}, headers=viewer).status_code == 403
        assert client.get("/api/services", headers=viewer).json() == []  # it may read no catalog key
        assert client.get("/api/services").status_code == 401
        stats = client.get("/api/vault/stats?scope=team-a", headers=admin)
        assert stats.status_code == 200 and stats.json()["scope"] == "team-a" and stats.json()["total"] == 0
        assert client.get("/api/vault/stats?scope=bad%20scope", headers=admin).status_code == 422
        no_redis = client.get("/api/events/dlq", headers=admin)
        assert no_redis.status_code == 400 and "--redis-url" in no_redis.json()["detail"]
        bad_ids = client.post("/api/events/dlq/replay", json={"ids": ["not-an-id"]}, headers=admin)
        assert bad_ids.status_code == 422
