"""Issue 8, items 18 and 19 against real `accord serve` processes: /docs needs nothing but the server
itself, and /metrics under --workers 2 counts the requests of every worker, /docs and /openapi.json
under their own routes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tests.harness import AccordServer, running


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def test_docs_and_every_asset_come_from_the_server_itself(module_server: AccordServer) -> None:
    with module_server.client() as client:
        page = client.get("/docs")
        assert page.status_code == 200 and "swagger" in page.text.lower()
        links = _Links()
        links.feed(page.text)
        assert links.urls, page.text
        script_urls = re.findall(r"""url:\s*['"]([^'"]+)['"]""", page.text)  # the OpenAPI document's URL
        assert "/openapi.json" in script_urls
        for url in [*links.urls, *script_urls]:
            assert url.startswith("/"), f"/docs loads {url} from elsewhere"
            answer = client.get(url)
            assert answer.status_code == 200, (url, answer.status_code)
            assert len(answer.content) > 100, url
        assert client.get("/docs/assets/swagger-ui-bundle.js").headers["content-type"].startswith("text/javascript")
        assert client.get("/docs/assets/..%2Fpyproject.toml").status_code == 404


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[str]:
    args = ("--workers", "2", "--db-url", f"sqlite:///{tmp_path / 'w.db'}")
    with running(AccordServer("", None, tmp_path / "serve", log_level="warning", args=args)) as server:
        yield server.url


def _count(scrape: str, route: str) -> float:
    pattern = rf'^accord_http_requests_total\{{[^}}]*route="{re.escape(route)}"[^}}]*\}} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, scrape, re.MULTILINE))


def test_metrics_under_two_workers_count_every_request_in_one_scrape(two_workers: str) -> None:
    close = {"Connection": "close"}  # a new connection each time, so the kernel hands them to both workers
    base = _count(httpx.get(f"{two_workers}/metrics", headers=close).text, "/healthz")
    for _ in range(60):
        assert httpx.get(f"{two_workers}/healthz", headers=close).status_code == 200
    assert httpx.get(f"{two_workers}/docs", headers=close).status_code == 200
    assert httpx.get(f"{two_workers}/openapi.json", headers=close).status_code == 200
    for _ in range(6):  # whichever worker answers the scrape, it reports them all
        scrape = httpx.get(f"{two_workers}/metrics", headers=close).text
        assert _count(scrape, "/healthz") - base == 60, scrape
        assert _count(scrape, "/docs") >= 1 and _count(scrape, "/openapi.json") >= 1
        assert _count(scrape, "unmatched") == 0
