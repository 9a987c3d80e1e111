"""A real `accord serve` (module-scoped, on SQLite, the server tests' settings declared) and a real chromium.

The browser is Debian's `chromium` (scripts/test installs it), driven by Playwright for Python; the suite never
runs `playwright install`, and a machine without chromium fails here, loudly, rather than skipping.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.harness import AccordServer, running
from tests.server.server_harness import create_token, declare

READ_ONLY_RULES = ["config/=read"]


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AccordServer]:
    workdir = tmp_path_factory.mktemp("ui-server")
    db_url = f"sqlite:///{workdir / 'accord.db'}"
    with ThreadPoolExecutor(1) as pool:  # declare() runs its own event loop: Playwright's may be running here
        pool.submit(declare, db_url, "").result()
    with running(AccordServer(db_url, "", workdir / "server", expect_token=True)) as server:
        yield server


@pytest.fixture(scope="module")
def viewer_token(ui_server: AccordServer) -> str:
    """A token that may read every setting and write none."""
    with ui_server.admin() as admin:
        return create_token(admin, "viewer", READ_ONLY_RULES)


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed: scripts/test installs it (apt-get install chromium)")
    # --no-sandbox: the suite may run as root (CI containers), where chromium's sandbox refuses to start
    launched = playwright_driver.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh profile per test: no cookie of an earlier test's session survives."""
    ctx = browser.new_context()
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
