"""`streams bench`'s maximum-rate run on the real broker: each peer reads a backlog written before
it starts and writes one output per event, which the run counts and times."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.bench.contestants import AIOKAFKA, CONFLUENT, QUIXSTREAMS, Contestant, backlog_run
from streams.bench.traffic import clicks
from streams.config import Settings
from streams.partitioning import partition_for
from tests.integration.harness import read_topic


@pytest.mark.parametrize("contestant", [CONFLUENT, QUIXSTREAMS, AIOKAFKA], ids=lambda c: c.name)
def test_a_peer_answers_every_event_of_a_backlog(
    contestant: Contestant, settings: Settings, tmp_path: Path
) -> None:
    records = clicks(users=100, items=200, events=600, seed=5)
    result = backlog_run(contestant, settings, records, tmp_path, timeout=120)
    assert result.sent == len(records) and result.received == len(records), result.as_dict()
    assert result.seconds > 0 and result.throughput > 0
    # The load generator's librdkafka producer keys like the Java clients (murmur2): every event
    # is on the partition the worker's partitioner names.
    for message in read_topic(settings, "clicks"):
        assert message.partition == partition_for(message.key, settings.partitions)
