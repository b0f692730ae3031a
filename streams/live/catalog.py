"""Every worker's copy of the catalog, followed from the compacted `catalog` topic.

Each worker needs the whole catalog (out-of-stock filtering, prices), so it reads every partition
itself, outside the consumer group. Processing waits until the catalog has been read up to the end
offsets seen at start-up: a worker never recommends from a half-loaded catalog. The processing loop
polls the follower between its rounds, so the catalog changes only between two batches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from streams.codec import MAX_VALUE_BYTES, Headers
from streams.core.catalog import CatalogItem
from streams.errors import BadMessage
from streams.ingest import parse_catalog_item
from streams.live.records import readable

log = logging.getLogger(__name__)

POLL_RECORDS = 5000


class CatalogFollower:
    def __init__(
        self,
        client: Mapping[str, Any],
        topic: str,
        on_update: Callable[[CatalogItem], None] | None = None,
        max_bytes: int = MAX_VALUE_BYTES,
    ) -> None:
        self.client = client  # streams.kafka.clients.librdkafka_config: bootstrap, security
        self.topic = topic
        self.max_bytes = max_bytes
        self.items: dict[str, CatalogItem] = {}
        self.ready = False
        self.on_update = on_update
        self.rejected = 0
        self._consumer: Consumer | None = None
        self._pending: dict[int, int] = {}  # partition -> end offset at start-up, not reached yet

    def start(self, timeout: float = 30.0) -> None:
        consumer = Consumer({**self.client, "group.id": "streams-catalog", "enable.auto.commit": False})
        try:
            metadata = consumer.list_topics(self.topic, timeout=timeout).topics.get(self.topic)
        except KafkaException as exc:
            consumer.close()
            raise RuntimeError(f"catalog topic {self.topic!r}: no metadata ({exc})") from exc
        partitions = sorted(metadata.partitions) if metadata is not None and metadata.error is None else []
        if not partitions:
            consumer.close()
            self.ready = True  # no catalog topic: nothing to filter on
            return
        for p in partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=timeout)
            if high > 0:
                self._pending[p] = high
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
        self._consumer = consumer
        self._mark_ready()

    def poll(self, timeout: float = 0.0) -> int:
        """Apply what has arrived (waits at most `timeout`); the number of records read."""
        if self._consumer is None:
            return 0
        messages = self._consumer.consume(POLL_RECORDS, timeout)
        for message in readable(messages, "catalog"):
            self._apply(message.value(), message.headers())
            end = self._pending.get(message.partition())
            if end is not None and message.offset() + 1 >= end:
                del self._pending[message.partition()]
        self._mark_ready()
        return len(messages)

    def _mark_ready(self) -> None:
        if not self.ready and not self._pending:
            log.info("catalog loaded: %d items", len(self.items))
            self.ready = True

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def _apply(self, raw: bytes | None, headers: Headers = None) -> None:
        if raw is None:
            return
        try:
            item = parse_catalog_item(raw, headers, self.max_bytes)
        except BadMessage:
            self.rejected += 1  # a malformed catalog entry is as good as none
            return
        self.items[item.item_id] = item
        if self.on_update is not None and self.ready:
            self.on_update(item)
