"""Wide events: one per request, sampled live by a stable salted hash, delivered without waiting (docs/events.md).

    pipeline = await accord.events.start(service="payments")
    app = accord.events.WideEventMiddleware(app, pipeline=pipeline)
    accord.events.current()["order"] = order_id      # inside a handler
    await pipeline.aclose()

Names are imported on first use, so ``import accord.events`` costs nothing until one is touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from accord.events.consumer import Consumer, ConsumerOptions
    from accord.events.context import current
    from accord.events.factory import start
    from accord.events.health import readiness, readiness_endpoint
    from accord.events.middleware import WideEventMiddleware
    from accord.events.pipeline import Pipeline, PipelineOptions
    from accord.events.sampling import SamplingPolicy, hash_unit
    from accord.events.settings import EventsSettings
    from accord.events.stats import PipelineStats

__all__ = [
    "Consumer",
    "ConsumerOptions",
    "EventsSettings",
    "Pipeline",
    "PipelineOptions",
    "PipelineStats",
    "SamplingPolicy",
    "WideEventMiddleware",
    "current",
    "hash_unit",
    "readiness",
    "readiness_endpoint",
    "start",
]

_WHERE = {
    "Consumer": "consumer",
    "ConsumerOptions": "consumer",
    "current": "context",
    "start": "factory",
    "WideEventMiddleware": "middleware",
    "Pipeline": "pipeline",
    "PipelineOptions": "pipeline",
    "SamplingPolicy": "sampling",
    "hash_unit": "sampling",
    "readiness": "health",
    "readiness_endpoint": "health",
    "EventsSettings": "settings",
    "PipelineStats": "stats",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'accord.events' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"accord.events.{module}"), name)
    globals()[name] = value
    return value
