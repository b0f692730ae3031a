"""Recovery time of a worker holding N users' state: restored from the changelog on an empty disk,
and restarted after SIGKILL with its RocksDB folder kept.

The N users' states are written straight into the state table's changelog topic, exactly as the
worker would have left them (same keys, partitions and encoding), which is much faster than
pushing N users' events through a worker first.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from tqdm import tqdm

from streams.bench.state import synthetic_states
from streams.config import STATE_TABLE, Settings
from streams.core.state import UserState
from streams.kafka.clients import client_options
from streams.kafka.topics import ensure_topics
from streams.live.process import WorkerProcess
from streams.partitioning import partition_for


def seed_changelog(settings: Settings, templates: Sequence[UserState], count: int) -> None:
    """Write `count` user states to the state table's changelog (`ensure_topics` creates it)."""
    topic = settings.changelog_topic(STATE_TABLE)
    producer = KafkaProducer(
        **client_options(settings), acks=1, linger_ms=20, batch_size=1 << 20, compression_type=None
    )
    try:
        for user, value in tqdm(
            synthetic_states(templates, count), total=count, desc="changelog", unit="user"
        ):
            producer.send(
                topic, key=user.encode(), value=value, partition=partition_for(user, settings.partitions)
            )
        producer.flush()
    finally:
        producer.close()


def _time_until_recovered(worker: WorkerProcess, timeout: float) -> float:
    started = time.monotonic()
    worker.start().wait_ready(timeout)
    return time.monotonic() - started


def recovery_times(
    settings: Settings, templates: Sequence[UserState], count: int, log_dir: Path, timeout: float = 600
) -> dict[str, Any]:
    ensure_topics(settings)
    started = time.monotonic()
    seed_changelog(settings, templates, count)
    seeded = time.monotonic() - started
    worker = WorkerProcess(settings, log_dir / f"recovery-{settings.app_id}.log")
    try:
        empty_disk = _time_until_recovered(worker, timeout)
        worker.kill()
        after_kill = _time_until_recovered(worker, timeout)
    finally:
        worker.stop()
    return {
        "users": count,
        "seed_seconds": round(seeded, 1),
        "empty_disk_seconds": round(empty_disk, 1),
        "after_sigkill_seconds": round(after_kill, 1),
    }
