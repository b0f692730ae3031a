"""The offline engine: partitions share core calls, yet outputs and states come out partition by
partition, in the order each partition alone would give them."""

from __future__ import annotations

from streams.core.processor import Output, Processor
from streams.generate import TrafficConfig, generate_traffic
from streams.offline.engine import OfflineEngine, OfflineResult
from streams.partitioning import partition_for
from tests.core.fakes import FakeRecommender

PARTITIONS = 4


def _run(batch_size: int) -> tuple[OfflineResult, FakeRecommender]:
    records = list(generate_traffic(TrafficConfig(users=60, items=100, events=1_500, seed=5)))
    model = FakeRecommender()
    engine = OfflineEngine(Processor(model, catalog={}), PARTITIONS, batch_size=batch_size)
    return engine.run(records), model


def _partition_of(output: Output) -> int:
    return output.partition if output.partition is not None else partition_for(output.key, PARTITIONS)


def test_outputs_and_states_are_in_partition_order_whatever_the_batch_size() -> None:
    whole, whole_model = _run(batch_size=100_000)  # each partition in one batch
    assert len(whole_model.calls) == 1  # ... and all of them in one core call
    for batch_size in (1, 7):
        result, model = _run(batch_size)
        assert len(model.calls) > 1
        assert result.outputs == whole.outputs
        assert list(result.states) == list(whole.states)
        assert result.applied == whole.applied
    # The catalog comes first in a generated log: the events are one flush, so partition by partition.
    partitions = [_partition_of(o) for o in whole.outputs]
    assert partitions == sorted(partitions) and len(set(partitions)) == PARTITIONS
    users = [partition_for(user, PARTITIONS) for user in whole.states]
    assert users == sorted(users)
