"""Every worker's copy of the catalog, followed from the compacted `catalog` topic.

Each worker needs the whole catalog (out-of-stock filtering, prices), so it reads every partition
itself, outside the consumer group. Processing waits until the catalog has been read up to the end
offsets seen at start-up: a worker never recommends from a half-loaded catalog.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.codec import MAX_VALUE_BYTES, Headers
from streams.core.catalog import CatalogItem
from streams.errors import BadMessage
from streams.ingest import parse_catalog_item

log = logging.getLogger(__name__)


class CatalogFollower:
    def __init__(
        self,
        client_options: Mapping[str, Any],
        topic: str,
        on_update: Callable[[CatalogItem], None] | None = None,
        max_bytes: int = MAX_VALUE_BYTES,
    ) -> None:
        self.client_options = client_options  # streams.kafka.clients.client_options: bootstrap, security
        self.topic = topic
        self.max_bytes = max_bytes
        self.items: dict[str, CatalogItem] = {}
        self.ready = asyncio.Event()
        self.on_update = on_update
        self.rejected = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        try:
            await self._follow()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("catalog follower failed; recommendations go on without catalog filtering")
            self.ready.set()

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(**self.client_options, enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            metadata = await consumer._client.fetch_all_metadata()  # aiokafka has no public call for this
            partitions = [
                TopicPartition(self.topic, p) for p in sorted(metadata.partitions_for_topic(self.topic) or ())
            ]
            if not partitions:
                self.ready.set()  # no catalog topic: nothing to filter on
                return
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions)
            pending = {tp for tp, offset in end.items() if offset > 0}
            if not pending:
                self.ready.set()
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                for tp, messages in batches.items():
                    for message in messages:
                        self._apply(message.value, message.headers)
                    if tp in pending and messages and messages[-1].offset + 1 >= end[tp]:
                        pending.discard(tp)
                if not self.ready.is_set() and not pending:
                    log.info("catalog loaded: %d items", len(self.items))
                    self.ready.set()
        finally:
            await consumer.stop()

    def _apply(self, raw: bytes | None, headers: Headers = None) -> None:
        if raw is None:
            return
        try:
            item = parse_catalog_item(raw, headers, self.max_bytes)
        except BadMessage:
            self.rejected += 1  # a malformed catalog entry is as good as none
            return
        self.items[item.item_id] = item
        if self.on_update is not None and self.ready.is_set():
            self.on_update(item)
