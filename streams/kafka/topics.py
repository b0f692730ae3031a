"""Create the system's topics: idempotent, partitions and replication configurable."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from streams.config import COMPACTED_TOPICS, LOGICAL_TOPICS, TABLES, Settings
from streams.kafka.clients import client_options


@dataclass(frozen=True)
class TopicReport:
    name: str
    created: bool
    partitions: int


def admin_client(settings: Settings) -> KafkaAdminClient:
    return KafkaAdminClient(**client_options(settings), client_id=f"{settings.app_id}-admin")


def ensure_topics(
    settings: Settings, logical: tuple[str, ...] = LOGICAL_TOPICS, tables: tuple[str, ...] = TABLES
) -> list[TopicReport]:
    """Create missing topics, the tables' changelogs included; leave existing ones as they are (a
    partition count is never changed: that would move users between partitions and orphan their
    state).

    Faust would create the changelogs itself, but only once the worker has joined its group: the
    group's metadata snapshot can then hold a changelog with 0 partitions, and Faust fails every
    table write on "PartitionsMismatch" until the worker restarts."""
    compacted = {settings.topic(name) for name in COMPACTED_TOPICS}
    compacted |= {settings.changelog_topic(table) for table in tables}
    admin = admin_client(settings)
    try:
        existing = _partition_counts(admin)
        reports = []
        for physical in [*map(settings.topic, logical), *map(settings.changelog_topic, tables)]:
            if physical in existing:
                reports.append(TopicReport(physical, False, existing[physical]))
                continue
            configs = (
                {"cleanup.policy": "compact"}
                if physical in compacted
                else {"retention.ms": str(settings.retention_ms)}
            )
            topic = NewTopic(physical, settings.partitions, settings.replication, topic_configs=configs)
            with contextlib.suppress(TopicAlreadyExistsError):  # a concurrent creator: same outcome
                admin.create_topics([topic])
            reports.append(TopicReport(physical, True, settings.partitions))
        return reports
    finally:
        admin.close()


def _partition_counts(admin: KafkaAdminClient) -> dict[str, int]:
    counts = {}
    for topic in admin.describe_topics():
        if topic.get("error_code", 0) == 0:
            counts[topic.get("name") or topic["topic"]] = len(topic["partitions"])
    return counts


def delete_topics(settings: Settings, names: list[str]) -> None:
    admin = admin_client(settings)
    try:
        present = set(admin.list_topics())
        doomed = [n for n in names if n in present]
        if doomed:
            admin.delete_topics(doomed)
    finally:
        admin.close()
