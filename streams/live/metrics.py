"""Prometheus metrics of one worker (`GET /metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
            "streams_batch_size",
            "Events per micro-batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=r,
        )
        self.lag = Gauge(
            "streams_consumer_lag", "Messages behind the log end", ["topic", "partition"], registry=r
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
