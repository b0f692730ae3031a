"""Online = offline: a log replayed through the broker and a worker gives exactly what
`streams replay --offline` writes: the same recommendation, trigger, segment-event and demand ids,
the same content."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streams.cli import _register, app
from streams.codec import decode_value
from streams.config import Settings
from streams.generate import TrafficConfig, generate_traffic
from streams.importers import import_diginetica, import_otto
from streams.logs import LogRecord, write_log
from streams.serving import DEFAULT_MODEL
from tests.integration.harness import WorkerProcess, produce, read_topic, wait_until

LOGS = {
    "otto": lambda data: list(import_otto(data / "otto-fixture")),
    "diginetica": lambda data: list(import_diginetica(data / "diginetica-sample-events")),
    "generated-50k": lambda _: list(
        generate_traffic(TrafficConfig(users=2_000, items=5_000, events=50_000, seed=3))
    ),
}
WALL_CLOCK = ("latency_ms",)


def keyed(values: list[dict[str, Any]], id_field: str) -> dict[str, dict[str, Any]]:
    out = {}
    for value in values:
        out[value[id_field]] = {k: v for k, v in value.items() if k not in WALL_CLOCK}
    return out


def offline_files(log: Path, out: Path, partitions: int) -> dict[str, list[dict[str, Any]]]:
    _register()
    args = ["replay", str(log), "--offline", "--out", str(out), "--model", str(DEFAULT_MODEL)]
    result = CliRunner().invoke(app, [*args, "--partitions", str(partitions)])
    assert result.exit_code == 0, result.output
    return {
        name: [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]
        for name in ("recommendations", "promotion-triggers", "audience-segments", "dead-letters", "demand")
    }


@pytest.mark.parametrize("name", sorted(LOGS))
def test_live_replay_equals_the_offline_replay(
    name: str, shared_data: Path, settings: Settings, worker: WorkerProcess, tmp_path: Path
) -> None:
    records: list[LogRecord] = LOGS[name](shared_data)
    log = tmp_path / "log.jsonl.gz"
    write_log(log, records)
    expected = offline_files(log, tmp_path / "offline", settings.partitions)
    want_recs = keyed(expected["recommendations"], "rec_id")
    want_triggers = keyed(expected["promotion-triggers"], "trigger_id")
    want_segments = keyed(expected["audience-segments"], "event_id")
    want_demand = keyed(expected["demand"], "demand_id")
    assert want_recs and want_demand and not expected["dead-letters"]

    worker.wait_healthy()
    produce(records, settings)  # while the worker runs: the sequencer must still merge in event time
    got_recs: dict[str, dict[str, Any]] = {}

    def all_recommendations() -> bool:
        nonlocal got_recs
        worker.assert_running()
        got_recs = keyed([decode_value(m.value) for m in read_topic(settings, "recommendations")], "rec_id")
        return len(got_recs) >= len(want_recs)

    wait_until(all_recommendations, 420, f"{len(want_recs)} recommendations")
    assert set(got_recs) == set(want_recs)
    differing = [rec_id for rec_id in want_recs if got_recs[rec_id] != want_recs[rec_id]]
    assert not differing, f"{len(differing)} recommendations differ, e.g. {differing[:3]}"

    # Triggers the last events' timers would fire come when event time moves on, in both runs alike.
    wait_until(
        lambda: len(read_topic(settings, "promotion-triggers")) >= len(want_triggers), 60, "the triggers"
    )
    got_triggers = keyed(
        [decode_value(m.value) for m in read_topic(settings, "promotion-triggers")], "trigger_id"
    )
    assert got_triggers == want_triggers
    # Segment changes, like triggers, include those that lifecycle timers cause when event time moves on.
    wait_until(
        lambda: len(read_topic(settings, "audience-segments")) >= len(want_segments), 60, "the segment events"
    )
    got_segments = keyed(
        [decode_value(m.value) for m in read_topic(settings, "audience-segments")], "event_id"
    )
    assert got_segments == want_segments
    # Demand windows close on event time: the last one with the event that moved time past it.
    wait_until(lambda: len(read_topic(settings, "demand")) >= len(want_demand), 60, "the demand windows")
    got_demand = keyed([decode_value(m.value) for m in read_topic(settings, "demand")], "demand_id")
    assert got_demand == want_demand
    health = worker.health() or {}
    assert health.get("reordered_by_timeout") == 0, health
    assert health.get("status") == "ok" and health.get("lag") == 0, health  # all input processed
