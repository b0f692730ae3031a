"""The checkpoint's librdkafka transport on the real broker: keys where the Java clients put them,
acknowledged offsets per topic-partition, commits in the worker's group, a full checkpoint, a
partition restored from its changelog, log ends asked without blocking."""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from streams.config import PARTITION_TABLE, STATE_TABLE, Settings
from streams.core.state import UserState
from streams.kafka.clients import librdkafka_config
from streams.kafka.topics import ensure_topics
from streams.live.changelog import read_states
from streams.live.checkpoint import Acks, Checkpoint, Record, complete
from streams.live.partition_store import PartitionStore
from streams.live.restore import Restored, restore_partition
from streams.live.rocks import MIB, RocksMemory
from streams.live.tables import encode_state
from streams.live.transport import LibrdkafkaTransport, producer_config
from streams.live.watermarks import HighWatermarks
from streams.partitioning import partition_for
from tests.integration.harness import read_topic


def transport(settings: Settings) -> tuple[LibrdkafkaTransport, Consumer]:
    client = librdkafka_config(settings)
    consumer = Consumer({**client, "group.id": settings.app_id, "enable.auto.commit": False})
    return LibrdkafkaTransport(Producer(producer_config(client, linger_ms=1)), consumer), consumer


def answered(sink: LibrdkafkaTransport, acks: Acks, timeout: float = 30) -> Acks:
    deadline = time.monotonic() + timeout
    while not acks.answered and time.monotonic() < deadline:
        sink.poll(0.1)
    assert acks.answered and not acks.failures, acks
    return acks


def test_keys_land_on_their_murmur2_partition_and_acks_give_the_acknowledged_offsets(
    settings: Settings,
) -> None:
    ensure_topics(settings)
    sink, consumer = transport(settings)
    try:
        topic = settings.topic("recommendations")
        users = [f"user-{i}" for i in range(40)]
        acks = Acks()
        for user in users:
            sink.produce(Record(topic, user.encode(), b"{}"), acks)
        acked = answered(sink, acks).offsets
        per_partition: dict[int, int] = {}
        for user in users:
            p = partition_for(user, settings.partitions)
            per_partition[p] = per_partition.get(p, 0) + 1
        # a fresh topic: the last offset of a partition is one less than the records it got
        assert acked == {(topic, p): n - 1 for p, n in per_partition.items()}
        assert acks.produced == len(users)
        clicks = settings.topic("clicks")
        assert sink.commit({(clicks, 0): 5, (clicks, 1): 9})
        committed = consumer.committed([TopicPartition(clicks, 0), TopicPartition(clicks, 1)], timeout=10)
        assert [(tp.partition, tp.offset) for tp in committed] == [(0, 5), (1, 9)]
    finally:
        consumer.close()


def test_a_checkpoint_reaches_the_topics_the_changelog_and_the_local_store(
    settings: Settings, tmp_path: Path
) -> None:
    ensure_topics(settings)
    sink, consumer = transport(settings)
    user = "shopper-7"
    partition = partition_for(user, settings.partitions)
    store = PartitionStore(tmp_path / "p", RocksMemory(cache_bytes=16 * MIB, write_buffer_bytes=4 * MIB))
    state = UserState(user_id=user)
    checkpoint = Checkpoint()
    checkpoint.send(Record(settings.topic("recommendations"), user.encode(), b"\x80"))
    checkpoint.put(partition, STATE_TABLE, user.encode(), encode_state(state))
    checkpoint.processed(settings.topic("clicks"), partition, 3)
    try:
        assert complete(checkpoint, sink, {partition: store}, settings.changelog_topic)
    finally:
        consumer.close()
    assert read_states(settings) == {user: state}
    assert store.changelog_offset(STATE_TABLE) == 0
    assert len(read_topic(settings, "recommendations")) == 1


def test_a_partition_restores_from_its_changelog_and_later_only_what_it_missed(
    settings: Settings, tmp_path: Path
) -> None:
    ensure_topics(settings)
    sink, consumer = transport(settings)
    partition = 1
    memory = RocksMemory(cache_bytes=16 * MIB, write_buffer_bytes=4 * MIB)
    live = PartitionStore(tmp_path / "live", memory)
    users = [f"u{i}" for i in range(25_000)]  # more than one fetch
    try:
        for round_ in range(2):
            checkpoint = Checkpoint()
            for user in users if round_ == 0 else users[:10]:
                checkpoint.put(partition, STATE_TABLE, user.encode(), encode_state(UserState(user_id=user)))
            checkpoint.put(partition, PARTITION_TABLE, b"p1", f"round {round_}".encode())
            complete(checkpoint, sink, {partition: live}, settings.changelog_topic)
            if round_ == 0:
                restored_disk = PartitionStore(tmp_path / "restarted", memory)
                first = restore(settings, restored_disk, partition)
                assert first.records == len(users) + 1
    finally:
        consumer.close()
    second = restore(settings, restored_disk, partition)
    assert second.records == 10 + 1  # only what the changelog got since
    empty = restore(settings, PartitionStore(tmp_path / "empty", memory), partition)
    assert empty.records == len(users) + 10 + 2
    for table in (STATE_TABLE, PARTITION_TABLE):
        assert list(restored_disk.items(table)) == list(live.items(table))
        assert restored_disk.changelog_offset(table) == live.changelog_offset(table)


def restore(settings: Settings, store: PartitionStore, partition: int) -> Restored:
    reader = Consumer({**librdkafka_config(settings), "group.id": "restore", "enable.auto.commit": False})
    try:
        return restore_partition(
            reader, store, partition, (STATE_TABLE, PARTITION_TABLE), settings.changelog_topic
        )
    finally:
        reader.close()


def test_log_ends_come_from_the_broker_without_blocking(settings: Settings) -> None:
    ensure_topics(settings)
    sink, consumer = transport(settings)
    consumer.close()
    clicks = settings.topic("clicks")
    acks = Acks()
    for i in range(3):
        sink.produce(Record(clicks, f"k{i}".encode(), b"{}", partition=2), acks)
    answered(sink, acks)
    marks = HighWatermarks(AdminClient(librdkafka_config(settings)))
    since = int(time.time() * 1000)
    assert not marks.caught_up((clicks, 2), last_offset=2, since_ms=since)  # not known yet
    marks.request_wanted()  # asked, not answered yet
    deadline = time.monotonic() + 10
    while marks.log_end((clicks, 2)) is None and time.monotonic() < deadline:
        marks.collect()
        time.sleep(0.01)
    assert marks.caught_up((clicks, 2), last_offset=2, since_ms=since)
    assert not marks.caught_up((clicks, 2), last_offset=1, since_ms=since)
