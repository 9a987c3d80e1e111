"""The probes on their own (registry/checks.py) against a real HTTP target process and real TCP listeners."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from accord.registry.checks import CRITICAL, PASSING, WARNING, Prober, tcp_probe, truncate_output
from tests.harness import running
from tests.server.consul.checks_harness import CheckTarget, Listener


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CheckTarget]:
    with running(CheckTarget(tmp_path_factory.mktemp("target"))) as process:
        yield process


@pytest.fixture
async def prober() -> AsyncIterator[Prober]:
    probes = Prober()
    try:
        yield probes
    finally:
        await probes.aclose()


@pytest.mark.parametrize(
    ("code", "status"), [(200, PASSING), (204, PASSING), (429, WARNING), (404, CRITICAL), (503, CRITICAL)]
)
async def test_http_status_mapping(prober: Prober, target: CheckTarget, code: int, status: str) -> None:
    name = f"map{code}"
    target.set(name, code)
    result = await prober.run("http", {"HTTP": target.target(name)})
    assert result.status == status
    assert result.output.startswith(f"HTTP GET {target.target(name)}: {code} ")


async def test_redirects_followed_unless_disabled(prober: Prober, target: CheckTarget) -> None:
    url = f"{target.url}/redirect/moved"
    followed = await prober.run("http", {"HTTP": url})
    assert (followed.status, followed.output) == (PASSING, f"HTTP GET {url}: 200 OK Output: ok")
    kept = await prober.run("http", {"HTTP": url, "DisableRedirects": True})
    assert kept.status == CRITICAL and kept.output.startswith(f"HTTP GET {url}: 302 Found")


async def test_timeout_is_critical(prober: Prober, target: CheckTarget) -> None:
    url = f"{target.url}/slow/3"
    result = await prober.run("http", {"HTTP": url, "Timeout": 0.5})
    assert result.status == CRITICAL
    assert result.output.startswith(f'Get "{url}": context deadline exceeded')


async def test_header_overrides_and_output_limit(prober: Prober, target: CheckTarget) -> None:
    result = await prober.run(
        "http", {"HTTP": target.target("hdr"), "Method": "HEAD", "Header": {"User-Agent": ["mine"], "X-A": ["1", "2"]}}
    )
    assert result.status == PASSING
    last = target.hits("hdr")["last"]
    assert last["method"] == "HEAD" and last["headers"]["User-Agent"] == "mine"
    assert truncate_output("x" * 5000) == "x" * 4096 + " ... (captured 4096 of 5000 bytes)"
    assert truncate_output("short") == "short"


async def test_tcp_up_and_refused(tmp_path: Path) -> None:
    with Listener() as listener:
        up = await tcp_probe(listener.address)
        assert (up.status, up.output) == (PASSING, f"TCP connect {listener.address}: Success")
    down = await tcp_probe(listener.address)
    assert (down.status, down.output) == (CRITICAL, f"dial tcp {listener.address}: connect: connection refused")
    bad = await tcp_probe("no-port")
    assert bad.status == CRITICAL
