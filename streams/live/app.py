"""The live adapter: one worker process.

Faust hosts the process (lifecycle, signals, the HTTP views, a memory-trimming timer); the hot path
is a processing loop on librdkafka that the worker owns (streams.live.loop): `clicks` and `orders`
through the pure core in batches, checkpointed in the order Kafka Streams uses. Delivery is
at-least-once; the offset watermark in each state makes a re-delivered event a no-op for the state,
and the deterministic output ids make a re-emitted output de-duplicable.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import faust
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from faust.app.base import BootStrategy
from mode import Service

from streams.config import INPUT_TOPICS, Settings
from streams.core.config import RulesConfig
from streams.core.processor import Processor
from streams.core.recommend import Recommender
from streams.core.state import StateLimits
from streams.kafka.clients import librdkafka_config
from streams.live.catalog import CatalogFollower
from streams.live.cors import cors_options
from streams.live.delivery import Delivery, consumer_config
from streams.live.local_index import LocalIndexDB, RocksTimerIndex, RocksWatchIndex
from streams.live.loop import LoopOptions, ProcessingLoop
from streams.live.malloc import TRIM_EVERY_SECONDS, release_free_memory
from streams.live.metrics import WorkerMetrics
from streams.live.outputs import OutputSink
from streams.live.owners import PartitionOwners
from streams.live.partition_store import PartitionStore
from streams.live.partitions import TABLES, OwnedPartitions
from streams.live.restore import Observe, restore_partition
from streams.live.rocks import MIB, RocksMemory
from streams.live.transport import LibrdkafkaTransport, commit_answered, producer_config
from streams.live.view import LiveFeed, WorkerView
from streams.live.watermarks import HighWatermarks

log = logging.getLogger(__name__)


class WebOnly(BootStrategy):
    """Faust runs no Kafka client of its own: the processing loop owns them."""

    enable_kafka = False


class WorkerHost(faust.App):
    BootStrategy = WebOnly


class Worker:
    """Builds one worker: its Kafka clients, stores, processing loop, and the Faust app hosting them."""

    def __init__(
        self,
        settings: Settings,
        rules: RulesConfig | None = None,
        recommender: Recommender | None = None,
        batch_max: int = 256,
        tick_seconds: float | None = 5.0,
    ) -> None:
        self.settings = settings
        self.rules = rules or RulesConfig()
        datadir = Path(settings.data_dir) / settings.app_id
        datadir.mkdir(parents=True, exist_ok=True)
        self.app = WorkerHost(
            settings.app_id,
            broker=f"kafka://{settings.bootstrap}",
            web_host=settings.web_host,
            web_port=settings.web_port,
            canonical_url=settings.canonical_url(),
            web_in_thread=False,
            autodiscover=False,
            web_tables_enabled=False,
            web_router_enabled=False,
            web_cors_options=cors_options(settings.web_access),
            datadir=str(datadir),
        )
        client = librdkafka_config(settings)
        self.client_config = client
        self.input_topics = tuple(settings.topic(t) for t in INPUT_TOPICS)
        self.rocks_memory = RocksMemory(
            cache_bytes=settings.rocksdb_cache_mb * MIB,
            write_buffer_bytes=settings.rocksdb_write_buffer_mb * MIB,
        )
        self.metrics = WorkerMetrics()
        self.catalog = CatalogFollower(
            client, settings.topic("catalog"), max_bytes=settings.max_message_bytes
        )
        self.processor = Processor(
            recommender,
            self.rules,
            StateLimits(recent_events=settings.recent_events),
            catalog=self.catalog.items,
        )
        self.processor.on_suppressed = self.metrics.trigger_suppressed
        # Derived from the states, rebuilt per assigned partition; in RocksDB so memory stays flat.
        self.local_index = LocalIndexDB(datadir / "local-index", self.rocks_memory)
        self.watchers = RocksWatchIndex(self.local_index)  # item -> local users who saw it
        self.partitions = OwnedPartitions(
            datadir / "partitions",
            self.rocks_memory,
            self.processor,
            RocksTimerIndex(self.local_index),
            self.watchers,
            settings.rocksdb_options()["write_buffer_size"],
        )
        self.admin = AdminClient(client)
        self.consumer = Consumer(
            {
                **consumer_config(
                    client, settings.app_id, settings.canonical_url(), session_timeout_ms=10_000
                ),
                "on_commit": commit_answered,  # interval checkpoints do not wait for their commits
            }
        )
        producer = Producer(producer_config(client, settings.producer_linger_ms))
        self.feed = LiveFeed()
        self.loop = ProcessingLoop(
            settings=settings,
            processor=self.processor,
            delivery=Delivery(self.consumer, self.input_topics, HighWatermarks(self.admin)),
            transport=LibrdkafkaTransport(producer, self.consumer),
            partitions=self.partitions,
            sink=OutputSink(settings, self.metrics),
            catalog=self.catalog,
            watchers=self.watchers,
            metrics=self.metrics,
            restore=self._restore,
            publish=self.feed.publish,
            options=LoopOptions(
                batch_max=batch_max,
                tick_seconds=tick_seconds,
                commit_interval=settings.commit_interval_ms / 1000,
            ),
        )
        self.owners = PartitionOwners(self.admin, settings.app_id, self.input_topics[0])
        self.view = WorkerView(
            settings, self.rules, self.loop, self.catalog, self.rocks_memory, self.local_index
        )
        self._restore_consumer: Consumer | None = None
        self._host_loop()
        from streams.live.collector_web import register_collector_views
        from streams.live.web import register_views

        register_views(self)
        register_collector_views(self)

    def _restore(self, store: PartitionStore, partition: int, observe: Observe) -> int:
        if self._restore_consumer is None:
            self._restore_consumer = Consumer(
                {
                    **self.client_config,
                    "group.id": f"{self.settings.app_id}-restore",
                    "enable.auto.commit": False,
                    "fetch.max.bytes": 64 * MIB,
                    "max.partition.fetch.bytes": 16 * MIB,
                }
            )
        return restore_partition(
            self._restore_consumer, store, partition, TABLES, self.settings.changelog_topic, observe=observe
        ).records

    def _host_loop(self) -> None:
        """The processing loop starts with the Faust app and stops before it."""
        worker = self

        class ProcessingLoopService(Service):
            async def on_start(self) -> None:
                worker.feed.attach(asyncio.get_running_loop())
                worker.loop.start()

            async def on_stop(self) -> None:
                await asyncio.get_running_loop().run_in_executor(None, worker.close)

        self.app.service(ProcessingLoopService)

        @self.app.timer(TRIM_EVERY_SECONDS, name="release-free-memory")
        async def trim() -> None:
            release_free_memory()

        _ = trim

    def close(self) -> None:
        self.loop.stop()
        if self._restore_consumer is not None:
            self._restore_consumer.close()
        self.partitions.close()
        self.local_index.close()

    def databases(self) -> list[Any]:
        """Every RocksDB database the worker has open: its partitions' stores and the local index."""
        return [*(store.db for store in self.partitions.stores.values()), self.local_index.db]
