"""`ensure_topics` on the real broker: every topic of ours, the tables' changelogs included."""

from __future__ import annotations

from kafka.admin import ConfigResource, ConfigResourceType

from streams.config import LOGICAL_TOPICS, TABLES, Settings
from streams.kafka.topics import admin_client, delete_topics, ensure_topics


def test_changelogs_exist_before_the_worker_joins_with_the_input_partitions(settings: Settings) -> None:
    changelogs = [settings.changelog_topic(table) for table in TABLES]
    try:
        reports = {r.name: r for r in ensure_topics(settings)}
        assert set(changelogs) <= set(reports) and len(reports) == len(LOGICAL_TOPICS) + len(TABLES)
        assert all(r.created and r.partitions == settings.partitions for r in reports.values())
        admin = admin_client(settings)
        try:
            described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(changelogs)}
            assert described == dict.fromkeys(changelogs, settings.partitions)
            resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in changelogs]
            configs = admin.describe_configs(resources)["topic"]
            for name in changelogs:  # a changelog keeps each user's last state
                assert configs[name]["cleanup.policy"]["value"] == "compact", name
        finally:
            admin.close()
        again = ensure_topics(settings)
        assert not any(r.created for r in again)
    finally:
        delete_topics(settings, [*map(settings.topic, LOGICAL_TOPICS), *changelogs])
