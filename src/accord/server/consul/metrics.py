"""The registry's Prometheus figures, read from the server's replica at scrape time.

Every replica holds the same registry entries, so whichever worker answers a scrape reports the
same checks and sessions; only "blocking queries in flight" is per process: under ``--workers N``
it counts the waiters of the worker that answered the scrape.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from accord.registry.blocking import ChangeSignal
from accord.replica.replica import Replica

CHECK_STATUSES = ("passing", "warning", "critical")
CHECK_PREFIX = "registry/check/"
SESSION_PREFIX = "registry/session/"
LEADER_KEY = "registry/lease/leader"


class RegistryCollector(Collector):
    def __init__(self, replica: Replica, signal: ChangeSignal) -> None:
        self._replica = replica
        self._signal = signal

    def collect(self) -> Iterator[GaugeMetricFamily]:
        checks = GaugeMetricFamily(
            "accord_health_service_status",
            "Health checks per service and status (a service is down while its critical count is above 0)",
            labels=["service", "status"],
        )
        counts: Counter[tuple[str, str]] = Counter()
        services: set[str] = set()
        for entry in self._replica.entries(CHECK_PREFIX):
            check = _json(entry.value)
            service = str(check.get("ServiceName") or "")
            services.add(service)
            counts[(service, str(check.get("Status", "critical")))] += 1
        for service in sorted(services):
            for status in CHECK_STATUSES:
                checks.add_metric([service, status], counts[(service, status)])
        yield checks
        yield GaugeMetricFamily(
            "accord_sessions", "Live Consul sessions", value=len(self._replica.entries(SESSION_PREFIX))
        )
        yield GaugeMetricFamily(
            "accord_blocking_queries", "Blocking queries waiting in this process", value=self._signal.waiting
        )
        leader = GaugeMetricFamily(
            "accord_registry_leader",
            "The replica holding the leader lease, which runs every health check (1 for its address)",
            labels=["address"],
        )
        lease = self._replica.entry(LEADER_KEY)
        if lease is not None:
            leader.add_metric([str(_json(lease.value).get("address", ""))], 1.0)
        yield leader


def _json(raw: bytes) -> dict[str, object]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
