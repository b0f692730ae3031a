"""`streams bench`'s recovery figure on the real broker: the changelog is seeded, a worker
recovers it from an empty disk and again after a SIGKILL."""

from __future__ import annotations

from pathlib import Path

from streams.bench.recovery import recovery_times
from streams.config import Settings
from streams.core.events import Click, Order
from streams.core.processor import Processor
from streams.core.state import UserState
from streams.generate import TrafficConfig, generate_traffic


def test_recovery_figure_from_a_seeded_changelog(settings: Settings, tmp_path: Path) -> None:
    processor = Processor()
    states: dict[str, UserState] = {}
    for record in generate_traffic(TrafficConfig(users=20, items=100, events=400, seed=3)):
        if record.topic not in ("clicks", "orders") or record.value is None:
            continue
        event = Click.from_dict(record.value) if record.topic == "clicks" else Order.from_dict(record.value)
        states[event.user_id] = processor.process(states.get(event.user_id), event).state
    figure = recovery_times(settings, list(states.values()), 2_000, tmp_path, timeout=180)
    assert figure["users"] == 2_000
    assert figure["empty_disk_seconds"] > 0 and figure["after_sigkill_seconds"] > 0
