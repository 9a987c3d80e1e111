"""/metrics reports checks by status per service, and the shipped alert rules name metrics that exist."""

from __future__ import annotations

import re
from pathlib import Path

import consul
import pytest
import yaml

from tests.harness import AccordServer, AccordServers, wait_until

RULES = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "accord-alerts.yml"


@pytest.fixture
def server(accord_servers: AccordServers, tmp_path: Path) -> AccordServer:
    return accord_servers.start(f"sqlite+aiosqlite:///{tmp_path}/accord.db", "", expect_token=True)


def _sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_checks_by_status_per_service(server: AccordServer) -> None:
    c = consul.Consul(port=server.port, token=server.token)
    c.agent.service.register("payments", service_id="pay-1", port=9000, check=consul.Check.ttl("30s"))
    c.agent.service.register("payments", service_id="pay-2", port=9001, check=consul.Check.ttl("30s"))
    c.agent.check.ttl_pass("service:pay-2")

    def scraped() -> str | None:
        with server.client() as http:
            text = http.get("/metrics").text
        passing = _sample(text, "accord_health_service_status", service="payments", status="passing")
        return text if passing == 1.0 else None

    text = wait_until(scraped, timeout=10, what="the passing check in /metrics")
    assert _sample(text, "accord_health_service_status", service="payments", status="critical") == 1.0
    assert _sample(text, "accord_blocking_queries") == 0.0
    assert _sample(text, "accord_sessions") == 0.0


def test_alert_rules_use_exported_metrics(server: AccordServer) -> None:
    rules = yaml.safe_load(RULES.read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    down = next(rule for group in rules["groups"] for rule in group["rules"] if rule["alert"] == "ServiceDown")
    assert down["expr"] == 'accord_health_service_status{status="critical"} > 0'
    with server.client() as http:
        exported = http.get("/metrics").text
    for expr in exprs:
        for name in re.findall(r"\b(accord_[a-z_]+)", expr):
            assert f"# TYPE {name} " in exported, f"alert expression {expr!r} names {name}, which /metrics lacks"
