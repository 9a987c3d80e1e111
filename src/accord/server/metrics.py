"""Prometheus metrics of a server: one process, or every worker of ``--workers N`` together.

Workers are separate processes, and a scrape reaches whichever one accepts it; so under several
workers the counters live in prometheus_client's multiprocess files (one directory per server,
made and removed by server/run.py) and every scrape adds up all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from accord.core import environ
from accord.replica.status import ReplicaStatus
from accord.store.types import Change

BUS_MODES = ("redis", "postgres", "local")


class _StatusCollector(Collector):
    """Read the LiveConfig's status at scrape time, so the figures are never stale."""

    def __init__(self, status: Callable[[], ReplicaStatus]) -> None:
        self._status = status

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        status = self._status()
        yield GaugeMetricFamily("accord_revision", "Last revision applied by this process", value=status.revision)
        bus = GaugeMetricFamily("accord_bus_mode", "Change bus in use (1 for the active mode)", labels=["mode"])
        for mode in BUS_MODES:
            bus.add_metric([mode], 1.0 if status.bus == mode else 0.0)
        yield bus
        yield GaugeMetricFamily(
            "accord_fallback_active",
            "1 while Redis is unreachable and a fallback bus carries changes",
            value=1.0 if status.fallback_active else 0.0,
        )
        yield CounterMetricFamily(
            "accord_bus_rejected",
            "Change bus messages dropped because they were not signed by this deployment",
            value=status.bus_rejected,
        )
        yield GaugeMetricFamily(
            "accord_database_degraded",
            "1 while the database is unreachable",
            value=1.0 if status.database != "ok" else 0.0,
        )


def share_metrics(directory: str) -> None:
    """Make this worker's metrics multiprocess values in ``directory``; before any metric is made.

    prometheus_client takes the directory from its environment variable only, and chooses the
    value class at import: both are set here, in the worker, so the user's environment is untouched.
    """
    environ.export_for_library("PROMETHEUS_MULTIPROC_DIR", directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self, shared_dir: str | None = None) -> None:
        self.registry = CollectorRegistry()
        self._scrape = self.registry
        if shared_dir is not None:
            self._scrape = CollectorRegistry()
            MultiProcessCollector(self._scrape, path=shared_dir)  # type: ignore[no-untyped-call]
        self.requests = Counter(
            "accord_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )  # under several workers, self.registry is only where they are made: scrapes read the shared files
        self.latency = Histogram(
            "accord_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.writes = Counter("accord_writes", "Committed writes (per key)", ["action"], registry=self.registry)
        self.conflicts = Counter("accord_conflicts", "Compare-and-set conflicts", registry=self.registry)
        self.fast_reads = Counter(
            "accord_http_fast_reads",
            "GET /api/config/{path} answered before FastAPI's routing (server/fast_reads.py)",
            registry=self.registry,
        )
        self.fast_writes = Counter(
            "accord_http_fast_writes",
            "PUT /api/config/{path} answered before FastAPI's routing (server/fast_writes.py)",
            registry=self.registry,
        )
        self.propagation_lag = Histogram(
            "accord_propagation_lag_seconds",
            "Commit-to-apply delay of changes written by other processes",
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
        )
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and its latency (the labelled children are looked up once, then cached)."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def observe_change(self, change: Change) -> None:
        """A change another process committed has been applied here: record how long that took."""
        if change.at is not None:
            self.propagation_lag.observe(max(0.0, time.time() - change.at.timestamp()))

    def watch_status(self, status: Callable[[], ReplicaStatus]) -> None:
        self._scrape.register(_StatusCollector(status))

    def watch(self, collector: Collector) -> None:
        """Report ``collector``'s figures (read at scrape time) beside the server's own."""
        self._scrape.register(collector)

    def render(self) -> bytes:
        return generate_latest(self._scrape)
