"""Check definitions decoded like Consul: case-insensitive and snake_case names, Go durations, Consul's refusals."""

from typing import Any

import pytest

from accord.core.errors import ConsulApiError
from accord.registry.catalog import check_key, parse_check, service_key


def parse(raw: dict[str, Any], *, script_checks: bool = False) -> dict[str, Any]:
    spec = parse_check(
        raw, node="n", service=None, default_id="d", default_name="Default", agent=True, script_checks=script_checks
    )
    return spec.entry


def test_spellings_are_one_field() -> None:
    for name in (
        "DeregisterCriticalServiceAfter",
        "deregister_critical_service_after",
        "deregistercriticalserviceafter",
    ):
        entry = parse({"ttl": "10s", name: "90s"})
        assert entry["Definition"]["DeregisterCriticalServiceAfter"] == 90.0
    entry = parse({"HTTP": "http://x", "INTERVAL": 2_000_000_000, "tls_skip_verify": True, "checkid": "c1"})
    assert entry["Definition"]["Interval"] == 2.0 and entry["Definition"]["TLSSkipVerify"] is True
    assert entry["CheckID"] == "c1" and entry["Type"] == "http" and entry["Status"] == "critical"


def test_raised_minimums_and_status() -> None:
    entry = parse({"tcp": "h:1", "interval": "100ms", "DeregisterCriticalServiceAfter": "10s", "status": "passing"})
    assert entry["Definition"]["Interval"] == 1.0 and entry["Definition"]["DeregisterCriticalServiceAfter"] == 60.0
    assert entry["Status"] == "passing" and entry["CriticalSince"] is None


@pytest.mark.parametrize(
    ("raw", "status", "text"),
    [
        ({"name": ""}, 400, "Invalid check: TTL must be > 0 for TTL checks"),
        ({"http": "http://x"}, 400, "Invalid check: Interval must be > 0"),
        ({"ttl": "5s", "interval": "5s"}, 400, "Invalid check: Interval and TTL cannot both be specified"),
        ({"ttl": "5s", "http": "http://x", "interval": "5s"}, 400, "Invalid check: Interval and TTL"),
        ({"tcp": "h:1", "http": "http://x", "interval": "5s"}, 400, "Invalid check: only one of"),
        ({"ttl": "5"}, 400, 'Request decode failed: time: invalid duration "5"'),
        ({"ttl": True}, 400, "Request decode failed: json: cannot unmarshal bool"),
        ({"args": ["/bin/true"], "interval": "5s"}, 500, "Scripts are disabled on this agent"),
    ],
)
def test_refusals(raw: dict[str, Any], status: int, text: str) -> None:
    with pytest.raises(ConsulApiError) as raised:
        parse(raw)
    assert raised.value.status == status and raised.value.detail.startswith(text)


def test_script_checks_when_enabled() -> None:
    entry = parse({"ScriptArgs": ["/bin/true"], "interval": "5s"}, script_checks=True)
    assert entry["Type"] == "script" and entry["Definition"]["ScriptArgs"] == ["/bin/true"]


def test_ids_outside_the_grammar_are_encoded() -> None:
    assert service_key("web") == "registry/service/web"
    assert check_key("service:web:1") == "registry/check/service_3Aweb_3A1"
    assert service_key("a b/c") == "registry/service/a_20b_2Fc"
