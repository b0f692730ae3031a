"""The output sink: the core's outputs and dead letters as records of a checkpoint, counted.

Recommendations also become the user's latest one (served by the HTTP API), and everything but demand
windows goes to the user's live feed once it is produced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streams.config import Settings
from streams.core.demand import DEMAND
from streams.core.processor import PROMOTION_TRIGGERS, RECOMMENDATIONS, Output
from streams.core.segments import AUDIENCE_SEGMENTS
from streams.deadletters import dead_letter_value
from streams.errors import BadMessage
from streams.live.checkpoint import Checkpoint, Record
from streams.live.metrics import WorkerMetrics
from streams.live.records import InputRecord
from streams.output_encoding import DEAD_LETTERS, encode_output
from streams.partitioning import partition_for
from streams.redaction import user_ref

log = logging.getLogger(__name__)

OUTPUT_TOPICS = (RECOMMENDATIONS, PROMOTION_TRIGGERS, AUDIENCE_SEGMENTS, DEMAND)
# A user's live feed message: {"topic": logical output topic, "value": the output's value}
Publish = Callable[[str, dict[str, Any]], None]


@dataclass(slots=True)
class OutputCounts:
    recommendations: int = 0
    triggers: int = 0
    segment_events: int = 0
    demand: int = 0
    dead_letters: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


@dataclass(slots=True)
class OutputSink:
    settings: Settings
    metrics: WorkerMetrics
    counts: OutputCounts = field(default_factory=OutputCounts)
    # Feed messages of outputs not produced yet: published once they are.
    pending_feed: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # (output topic, when its cause was read: monotonic s) of outputs not produced yet.
    pending_latency: list[tuple[str, float]] = field(default_factory=list)
    _topics: dict[str, str] = field(default_factory=dict, init=False, repr=False)  # logical -> physical

    def add(
        self,
        checkpoint: Checkpoint,
        outputs: list[Output],
        started: float | None = None,
        read_at: float | None = None,
    ) -> None:
        """`started`: perf_counter() when the batch's processing began (recommendations carry the
        latency from there). `read_at`: when the outputs' cause was read (InputRecord.read_at)."""
        metrics = self.metrics
        for output in outputs:
            if read_at:
                self.pending_latency.append((output.topic, read_at))
            value = output.value
            if output.topic == RECOMMENDATIONS:
                if started is not None:
                    value = {**value, "latency_ms": round((time.perf_counter() - started) * 1000, 3)}
                metrics.recommendations.inc()
                self.counts.recommendations += 1
            elif output.topic == AUDIENCE_SEGMENTS:
                metrics.child(metrics.segment_events, value["segment"], value["action"]).inc()
                self.counts.segment_events += 1
            elif output.topic == DEMAND:
                metrics.child(metrics.demand, value["scope"]).inc()
                self.counts.demand += 1
            else:
                metrics.child(metrics.triggers, value["kind"]).inc()
                self.counts.triggers += 1
            encoded, headers = encode_output(output.topic, value, self.settings.output_format)
            topic = self._topics.get(output.topic) or self._topics.setdefault(
                output.topic, self.settings.topic(output.topic)
            )
            checkpoint.send(Record(topic, output.key.encode(), encoded, output.partition, tuple(headers)))
            if output.topic != DEMAND:  # the live feed is per shopper
                self.pending_feed.append((output.key, {"topic": output.topic, "value": value}))

    def dead_letter(self, checkpoint: Checkpoint, record: InputRecord, error: BadMessage) -> None:
        self.counts.dead_letters += 1
        self.metrics.dead_letters.labels(error.code).inc()
        # The reason may quote the key and the user_id: the log gets the code and a hashed key only.
        log.info(
            "dead letter %s[%d]@%d %s: %s%s",
            record.topic,
            record.partition,
            record.offset,
            user_ref(record.key, self.settings.log_salt),
            error.code,
            f" ({error.field})" if error.field else "",
        )
        value = dead_letter_value(
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            error,
            ts=record.timestamp_ms if record.timestamp_ms is not None else int(time.time() * 1000),
            max_bytes=self.settings.max_message_bytes,
        )
        encoded, headers = encode_output(DEAD_LETTERS, value, self.settings.output_format)
        topic = self.settings.topic(DEAD_LETTERS)
        checkpoint.send(Record(topic, value["key"], encoded, headers=tuple(headers)))

    def published(self, publish: Publish) -> None:
        """The outputs added so far are produced: their feed messages go out."""
        feed, self.pending_feed = self.pending_feed, []
        for user_id, message in feed:
            publish(user_id, message)
        now = time.monotonic()
        for topic, read_at in self.pending_latency:
            self.metrics.child(self.metrics.event_to_output, topic).observe(now - read_at)
        self.pending_latency.clear()

    def discard_feed(self) -> None:
        self.pending_feed.clear()
        self.pending_latency.clear()

    def partition_for(self, user_id: str) -> int:
        return partition_for(user_id, self.settings.partitions)
