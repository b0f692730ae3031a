"""A partition's tables brought up to their changelogs, loaded into RocksDB as sorted table files.

Reading starts after the offset the local copy already holds (`PartitionStore.changelog_offset`),
so a worker restarted on its own disk reads only what it missed, and an empty disk reads all. The
changelog never lags the committed input offsets (see streams.live.checkpoint), so a restored
partition is consistent with where its input consumer resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streams.live.partition_store import PartitionStore

FETCH_RECORDS = 10_000
WAIT_SECONDS = 1.0
LOAD_BYTES = 64 * 1024 * 1024  # records gathered into one bulk load (a sorted table file)


@dataclass(frozen=True, slots=True)
class Restored:
    partition: int
    records: int  # changelog records applied (a key may count more than once)


# Sees each table's records (key -> value, None: deleted) just before they are loaded.
Observe = Callable[[str, Mapping[bytes, bytes | None]], None]


class RestoreFailed(RuntimeError):
    """A changelog could not be read to its end."""


def restore_partition(
    consumer: Consumer,
    store: PartitionStore,
    partition: int,
    tables: Iterable[str],
    changelog_topic: Callable[[str], str],
    metadata_timeout: float = 10.0,
    observe: Observe | None = None,
) -> Restored:
    """`consumer`: one outside any group (assign only); it is left unassigned. `observe` sees the
    records as they are loaded, in changelog order (a key's last value comes last)."""
    ends: dict[str, tuple[str, int]] = {}  # table -> (topic, high watermark)
    start: list[TopicPartition] = []
    for table in tables:
        topic = changelog_topic(table)
        try:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=metadata_timeout, cached=False
            )
        except KafkaException as exc:
            raise RestoreFailed(f"{topic}[{partition}]: no watermarks ({exc})") from exc
        begin = max(store.changelog_offset(table) + 1, low)
        if begin < high:
            ends[table] = (topic, high)
            start.append(TopicPartition(topic, partition, begin))
    if not start:
        return Restored(partition, 0)
    table_of = {topic: table for table, (topic, _) in ends.items()}
    position = {table_of[tp.topic]: tp.offset for tp in start}  # table -> next offset to read
    remaining = dict(ends)
    applied = 0
    writes: dict[str, dict[bytes, bytes | None]] = {table: {} for table in ends}
    reached: dict[str, int] = {}
    gathered = 0  # bytes of values in `writes`
    consumer.assign(start)
    try:
        while remaining:
            # librdkafka's consume waits for as many records as asked or the timeout: never ask for
            # more than are left before the ends (fewer only where compaction removed some).
            left = sum(high - position[table] for table, (_, high) in remaining.items())
            messages = consumer.consume(max(1, min(FETCH_RECORDS, left)), WAIT_SECONDS)
            for message in messages:
                if message.error() is not None:
                    raise RestoreFailed(f"{message.topic()}[{partition}]: {message.error()}")
                table = table_of[message.topic()]
                value = message.value()
                writes[table][message.key()] = value
                gathered += len(value) if value is not None else 0
                reached[table] = message.offset()
            applied += len(messages)
            for table, offset in reached.items():
                position[table] = offset + 1
                # Offsets may skip (compaction): done once the last one before the end is read.
                if table in remaining and offset + 1 >= remaining[table][1]:
                    del remaining[table]
            if reached and (gathered >= LOAD_BYTES or not remaining):
                if observe is not None:
                    for table, rows in writes.items():
                        observe(table, rows)
                store.load(writes, reached)  # a load lost in a crash is read again
                writes = {table: {} for table in ends}
                reached, gathered = {}, 0
        store.flush()
    finally:
        consumer.unassign()
    return Restored(partition, applied)
