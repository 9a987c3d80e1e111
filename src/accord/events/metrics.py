"""Prometheus view of a pipeline (and optionally a consumer): read from its counters at scrape time.

Register it in the application's registry: ``REGISTRY.register(EventsCollector(pipeline))``. Nothing is
counted twice: the collector only reads the integers the pipeline already keeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from accord.events.stats import STAGES, PipelineStats


class Observed(Protocol):
    """What the collector reads of a pipeline (a Protocol, so this module does not import the pipeline)."""

    def stats(self) -> PipelineStats: ...

    def stream_lag(self) -> int | None: ...

    @property
    def stream_maxlen(self) -> int: ...


__all__ = ["EventsCollector"]

P = "accord_events_"


class EventsCollector(Collector):
    def __init__(self, pipeline: Observed) -> None:
        self._pipeline = pipeline

    def collect(self) -> Iterator[Metric]:
        stats = self._pipeline.stats()
        kept = CounterMetricFamily(P + "kept", "Events kept, by the rule that kept them.", labels=["rule"])
        for rule, n in sorted(stats.kept.items()):
            kept.add_metric([rule], n)
        yield kept
        dropped = CounterMetricFamily(P + "dropped", "Events dropped, by reason and class.", labels=["reason", "class"])
        for name, n in sorted(stats.dropped.items()):
            reason, _, klass = name.partition("/")
            dropped.add_metric([reason, klass], n)
        yield dropped
        delivered = CounterMetricFamily(P + "delivered", "Events delivered, by stage.", labels=["stage"])
        for stage in STAGES:
            delivered.add_metric([stage], stats.delivered.get(stage, 0))
        yield delivered
        for name, value, text in (
            ("sampled_out", stats.sampled_out, "Events the sampling policy did not keep."),
            ("coerced", stats.coerced, "Events with a value JSON cannot hold, coerced."),
            ("truncated", stats.truncated, "Events cut to fit the size cap."),
            ("masked", stats.masked, "Events with a masked secret."),
            ("spooled", stats.spooled, "Events written to the local spool."),
            ("replayed", stats.replayed, "Spooled events delivered after a stage returned."),
            ("redelivered", stats.redelivered, "Unconfirmed events added to the stream again."),
            ("spool_corrupt", stats.spool_corrupt, "Spool records that failed their checksum."),
            ("spool_truncated", stats.spool_truncated, "Spool records cut short (torn writes)."),
        ):
            yield CounterMetricFamily(P + name, text, value=value)
        yield from self._gauges()

    def _gauges(self) -> Iterator[Metric]:
        stats = self._pipeline.stats()
        active = GaugeMetricFamily(P + "active_stage", "1 on the stage events go to now.", labels=["stage"])
        for stage in STAGES:
            active.add_metric([stage], 1.0 if stage == stats.active_stage else 0.0)
        yield active
        yield GaugeMetricFamily(
            P + "fallback_active",
            "1 while events go to the database or the spool.",
            value=float(stats.active_stage in ("database", "spool")),
        )
        yield GaugeMetricFamily(P + "buffered", "Events waiting in memory.", value=stats.buffered)
        yield GaugeMetricFamily(
            P + "unconfirmed", "Events in the stream not yet acknowledged.", value=stats.unconfirmed
        )
        yield GaugeMetricFamily(P + "spool_bytes", "Bytes in the local spool.", value=stats.spool_bytes)
        lag = self._pipeline.stream_lag()
        if lag is not None:
            yield GaugeMetricFamily(P + "consumer_lag", "Stream entries the group has not read.", value=lag)
            maxlen = self._pipeline.stream_maxlen
            yield GaugeMetricFamily(P + "stream_maxlen", "The stream's MAXLEN bound.", value=maxlen)
