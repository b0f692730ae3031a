"""Prometheus metrics of one worker (`GET /metrics`).

Named by Prometheus' conventions: the unit ends the name (`_seconds`, `_bytes`, `_records`,
`_events`), and a counter is exposed with `_total`. docs/operations.md lists them.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

# Event-to-output latency, seconds: from a few hundred microseconds (one event, no wait) to the
# event-time merge's longest hold (streams.live.sequencer).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}  # `child`
        r = self.registry
        self.events_in = Counter("streams_events_in", "Input events consumed", ["topic"], registry=r)
        self.applied = Counter("streams_events_applied", "Events applied to user state", registry=r)
        self.redelivered = Counter("streams_events_redelivered", "Re-delivered events skipped", registry=r)
        self.dead_letters = Counter(
            "streams_dead_letters", "Messages sent to dead-letters", ["code"], registry=r
        )
        self.recommendations = Counter("streams_recommendations", "Recommendations sent", registry=r)
        self.triggers = Counter("streams_triggers", "Promotion triggers sent", ["kind"], registry=r)
        self.segment_events = Counter(
            "streams_segment_events",
            "Audience segment enter/exit events sent",
            ["segment", "action"],
            registry=r,
        )
        self.demand = Counter("streams_demand_windows", "Demand window counts sent", ["scope"], registry=r)
        self.model_latency = Histogram(
            "streams_batch_process_seconds",
            "Core + model time per micro-batch",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        self.batch_size = Histogram(
            "streams_batch_events",
            "Events per micro-batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=r,
        )
        self.lag = Gauge(
            "streams_consumer_lag_records",
            "Input records behind the log end, per topic-partition",
            ["topic", "partition"],
            registry=r,
        )
        self.event_to_output = Histogram(
            "streams_event_to_output_seconds",
            "From reading an input event off Kafka to producing an output it caused, by output topic",
            ["topic"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.triggers_suppressed = Counter(
            "streams_triggers_suppressed",
            "Promotion triggers the contact policy refused, by kind and reason",
            ["kind", "reason"],
            registry=r,
        )
        self.sse_connections = Gauge(
            "streams_sse_connections", "Open Server-Sent Events connections (live feeds)", registry=r
        )
        self.http_requests = Counter(
            "streams_http_requests",
            "HTTP requests answered, by route and status",
            ["route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "streams_http_request_duration_seconds",
            "Time to answer an HTTP request (a live feed: until it closes), by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ready = Gauge(
            "streams_ready",
            "1 while the worker is ready to serve (GET /readyz answers 200), else 0",
            registry=r,
        )
        self.build_info = Gauge(
            "streams_build_info",
            "Always 1: the package version and the model version serving now",
            ["version", "model_version"],
            registry=r,
        )

        self.memory = Gauge(
            "streams_memory_bytes",
            "Memory by part, in bytes: RocksDB's shared cache (memtables included), memtables,"
            " blocks pinned in the cache, table readers; the C heap in use, free in its arenas, and"
            " mapped in large blocks",
            ["part"],
            registry=r,
        )
        self.python_blocks = Gauge(
            "streams_python_blocks", "Python objects' memory blocks allocated", registry=r
        )
        self.indexed = Gauge(
            "streams_local_index_keys",
            "Keys of the local timer and watcher index (RocksDB's estimate)",
            registry=r,
        )

    def child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        """`metric.labels(*labels)`, looked up once: a hot path (per record, per output) reads it
        from a plain dict instead of `labels()`' locked, validating lookup."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def trigger_suppressed(self, kind: str, reason: str) -> None:
        """The core's observer of the contact policy (streams.core.triggers.Refused)."""
        self.triggers_suppressed.labels(kind, reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
