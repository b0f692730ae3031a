"""The backbone end to end: real broker, real worker process, real RocksDB, changelog as the truth."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from streams.bench.poison import malformed
from streams.codec import decode_value
from streams.config import Settings
from streams.generate import TrafficConfig, generate_traffic
from streams.importers import import_diginetica, import_otto
from streams.logs import LogRecord, json_headers
from tests.integration.harness import (
    WorkerProcess,
    offline,
    produce,
    read_topic,
    start_worker,
    wait_for_states,
    wait_until,
)

DATASETS = {
    "otto": lambda data: import_otto(data / "otto-fixture"),
    "diginetica": lambda data: import_diginetica(data / "diginetica-sample-events"),
}


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_replayed_dataset_yields_exactly_the_in_process_state(
    dataset: str, shared_data: Path, settings: Settings, worker: WorkerProcess
) -> None:
    records = list(DATASETS[dataset](shared_data))
    expected = offline(records, settings)
    assert expected.states and not expected.dead_letters
    produce(records, settings)
    wait_for_states(settings, expected.states, worker)


def test_malformed_messages_go_to_dead_letters_and_the_worker_keeps_going(
    settings: Settings, worker: WorkerProcess
) -> None:
    rng = random.Random(11)
    config = TrafficConfig(users=100, items=300, events=1000, seed=5)
    valid = [r for r in generate_traffic(config) if r.topic in ("clicks", "orders")]
    clicks = [r for r in valid if r.topic == "clicks"]
    bad = [malformed(rng, n, rng.choice(clicks)) for n in range(1000)]
    mixed: list[LogRecord] = []
    for good, poison in zip(valid, bad, strict=True):
        mixed += [good, poison]
    # A JSON body *with* its header is valid: it must be applied, not dead-lettered.
    json_click = LogRecord(
        "clicks",
        "json-user",
        1_700_000_000_000,
        headers=json_headers(),
        value={
            "event_id": "json-1",
            "user_id": "json-user",
            "type": "view",
            "item_id": "sku-9",
            "ts": 1_700_000_000_000,
        },
    )
    mixed.append(json_click)
    expected = offline(mixed, settings)
    assert len(expected.dead_letters) == 1000
    produce(mixed, settings)
    wait_for_states(settings, expected.states, worker)

    letters = read_topic(settings, "dead-letters")
    assert len(letters) == 1000
    sent_bad = sorted(r.wire_value() for r in bad)
    decoded = [decode_value(m.value) for m in letters]
    assert sorted(d["value"] or b"" for d in decoded) == sent_bad
    codes = {d["error"]["code"] for d in decoded}
    assert {
        "bad_msgpack",
        "wrong_type",
        "missing_field",
        "unknown_value",
        "too_long",
        "bad_json",
        "empty_value",
        "out_of_range",
    } <= codes
    for letter, d in zip(letters, decoded, strict=True):
        assert d["source_topic"] == settings.topic("clicks")
        assert d["error"]["message"]
        assert letter.key == (d["key"] or None)
    assert any("data.user_id" in (d["error"].get("field") or "") for d in decoded)

    # Still consuming after all that: one more event for a new user shows up.
    late = LogRecord(
        "clicks",
        "late-user",
        1_700_000_100_000,
        value={
            "event_id": "late-1",
            "user_id": "late-user",
            "type": "view",
            "item_id": "sku-1",
            "ts": 1_700_000_100_000,
        },
    )
    produce([late], settings)
    wait_for_states(settings, offline([*mixed, late], settings).states, worker)


@pytest.mark.parametrize("wipe_local_state", [False, True], ids=["restart", "restart-on-empty-disk"])
def test_sigkill_mid_replay_loses_nothing_and_applies_nothing_twice(
    wipe_local_state: bool, settings: Settings, tmp_path: Path
) -> None:
    records = list(generate_traffic(TrafficConfig(users=400, items=1000, events=30_000, seed=3)))
    expected = offline(records, settings)
    worker = start_worker(settings, tmp_path)
    try:
        worker.wait_healthy()
        produce(records, settings)
        wait_until(lambda: (worker.health() or {}).get("applied", 0) > 8_000, 180, "the worker to be mid-way")
        worker.kill()
        if wipe_local_state:
            shutil.rmtree(settings.data_dir)  # a new machine: everything must come from the changelog
        worker = start_worker(settings, tmp_path)
        # The whole state, triggers and timers included: the sequencer's order survives the crash.
        wait_for_states(settings, expected.states, worker, timeout=300)
    finally:
        worker.stop()
