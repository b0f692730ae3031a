from __future__ import annotations

from streams.generate import TrafficConfig, generate_traffic
from streams.logs import LogRecord
from streams.offline.states import replay_states


def test_in_process_replay_applies_valid_events_and_collects_dead_letters() -> None:
    records = list(generate_traffic(TrafficConfig(users=20, items=50, events=500, seed=1)))
    poison = LogRecord("clicks", "u1", 1, value_bytes=b"")
    result = replay_states([*records, poison])
    assert result.applied == 500
    assert [exc.code for _, exc in result.dead_letters] == ["empty_value"]
    assert sum(sum(s.seq.values()) for s in result.states.values()) == 500


def test_a_retrying_producer_that_sends_every_event_twice_changes_nothing() -> None:
    records = list(generate_traffic(TrafficConfig(users=20, items=50, events=300, seed=2)))
    once = replay_states(records)
    twice = replay_states([r for record in records for r in (record, record)])
    assert twice.states == once.states
    assert twice.applied == once.applied
