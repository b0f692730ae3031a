"""What the HTTP views show, read from the worker's parts: a user's state and latest
recommendation, health, lag, memory; and each user's live feed (Server-Sent Events).

The processing loop runs on its own thread; these reads come from the web server's event loop. They
read RocksDB (thread-safe) and plain counters, and the feed crosses threads only through
`call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from streams.config import Settings
from streams.core.config import RulesConfig
from streams.core.processor import recommendation_value
from streams.core.state import UserState
from streams.live.catalog import CatalogFollower
from streams.live.liveness import StallDetector
from streams.live.local_index import LocalIndexDB
from streams.live.loop import ProcessingLoop
from streams.live.malloc import heap_usage
from streams.live.rocks import RocksMemory
from streams.partitioning import partition_for

FEED_QUEUE_LIMIT = 100  # messages a slow feed reader may fall behind before messages are dropped


@dataclass
class LiveFeed:
    """Per user, the queues of the feed's open connections."""

    subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self, user_id: str) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.subscribers.setdefault(user_id, set()).add(queue)
        return queue

    def unsubscribe(self, user_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        queues = self.subscribers.get(user_id, set())
        queues.discard(queue)
        if not queues:  # else every user id ever asked for would stay a key
            self.subscribers.pop(user_id, None)

    def publish(self, user_id: str, message: dict[str, Any]) -> None:
        """From any thread."""
        if user_id not in self.subscribers or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._deliver, user_id, message)

    def _deliver(self, user_id: str, message: dict[str, Any]) -> None:
        for queue in self.subscribers.get(user_id, ()):
            if queue.qsize() < FEED_QUEUE_LIMIT:
                queue.put_nowait(message)


class WorkerView:
    def __init__(
        self,
        settings: Settings,
        rules: RulesConfig,
        loop: ProcessingLoop,
        catalog: CatalogFollower,
        memory: RocksMemory,
        local_index: LocalIndexDB,
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.loop = loop
        self.catalog = catalog
        self.memory = memory
        self.local_index = local_index
        self.stall = StallDetector(after=settings.stall_seconds)

    def partition_for(self, user_id: str) -> int:
        return partition_for(user_id, self.settings.partitions)

    def owns(self, user_id: str) -> bool:
        return self.partition_for(user_id) in self.loop.partitions.tasks

    def state(self, user_id: str) -> UserState | None:
        return self.loop.load_state(self.partition_for(user_id), user_id)

    def latest(self, user_id: str) -> dict[str, Any] | None:
        """The user's latest recommendation, as the user state keeps it."""
        state = self.state(user_id)
        if state is None or state.recommendation is None:
            return None
        return recommendation_value(user_id, state.recommendation)

    def event_time(self, user_id: str) -> int:
        """The user's partition's event time (its watermark): "now" for the profile and context."""
        task = self.loop.partitions.tasks.get(self.partition_for(user_id))
        return task.state.watermark if task is not None else -1

    def recovering(self) -> bool:
        return self.loop.restoring or not self.catalog.ready

    def health(self) -> tuple[dict[str, Any], int]:
        recovering = self.recovering()
        lag = sum(self.loop.lag().values())
        stalled = self.stall.observe(self.loop.processed(), 0 if recovering else lag, time.monotonic())
        sequencer = self.loop.delivery.sequencer
        demand_late = sum(
            t.state.demand.late
            for t in list(self.loop.partitions.tasks.values())
            if t.state.demand is not None
        )
        document = {
            # "stalled": input waits and nothing was processed for STREAMS_STALL_SECONDS (503).
            "status": "stalled" if stalled else "ok",
            "lag": lag,
            "app_id": self.settings.app_id,
            "partitions": sorted(self.loop.delivery.assigned),
            # True while partitions are restored from their changelogs, or the catalog loads.
            "recovering": recovering,
            "held": len(sequencer),
            "reordered_by_timeout": sequencer.forced,
            "demand_late_events": demand_late,
            "model_version": getattr(self.loop.processor.recommender, "version", None),
            **self.loop.health_counts(),
        }
        return document, 503 if stalled else 200

    def update_metrics(self, databases: list[Any]) -> None:
        metrics = self.loop.metrics
        for (topic, partition), lag in self.loop.lag().items():
            metrics.lag.labels(topic, str(partition)).set(lag)
        for part, value in self.memory.usage(databases).items():
            metrics.memory.labels(part.removesuffix("_bytes")).set(value)
        for part, value in (heap_usage() or {}).items():
            metrics.memory.labels(f"heap_{part}").set(value)
        metrics.python_blocks.set(sys.getallocatedblocks())
        metrics.indexed.set(self.local_index.estimated_keys())
