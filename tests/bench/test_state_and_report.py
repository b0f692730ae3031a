"""Benchmark pieces that need no broker: state size figures and the report against targets."""

from __future__ import annotations

from pathlib import Path

from streams.bench.run import checks, median_run, table
from streams.bench.state import rocksdb_size, state_sizes, synthetic_states
from streams.bench.traffic import LoadResult
from streams.generate import TrafficConfig, generate_traffic
from streams.live.tables import decode_state
from streams.offline.replay import Variant, run_offline


def test_state_figures_come_from_real_states_and_a_real_rocksdb(tmp_path: Path) -> None:
    log = list(generate_traffic(TrafficConfig(users=100, items=200, events=2_000, seed=2)))
    states = list(run_offline(log, Variant(None), 4).result.states.values())
    sizes = state_sizes(states)
    assert (
        sizes["users"] == len(states) and 0 < sizes["mean_bytes"] <= sizes["p99_bytes"] <= sizes["max_bytes"]
    )
    user, raw = next(iter(synthetic_states(states, 5)))
    assert decode_state(raw).user_id == user == "bench-u0"
    rocks = rocksdb_size(states, 3_000, tmp_path)
    assert rocks["users"] == 3_000 and rocks["disk_bytes"] > 0
    assert rocks["value_bytes"] > 2_000 * sizes["mean_bytes"] * 0.5
    assert list(tmp_path.iterdir()) == []  # the scratch database is removed


def test_report_marks_each_figure_against_its_target() -> None:
    run = {"offered_rate": 1_000, "throughput": 900.0, "p50_ms": 5.0, "p95_ms": 20.0, "p99_ms": 80.0}
    backlog = {"offered_rate": None, "p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan")}
    results = {
        "worker": [{**run, "offered_rate": 250, "p99_ms": 20.0}, run],
        "passthrough": [{**run, "offered_rate": 250}, run],
        "max_rate": {
            "worker": {**backlog, "throughput": 7_500.0},  # 0.5 of the reference: met
            "worker --no-model": {**backlog, "throughput": 5_000.0},  # 0.33: missed
            "aiokafka passthrough": {**backlog, "throughput": 9_000.0},
            "confluent-kafka passthrough": {**backlog, "throughput": 80_000.0},
            "quixstreams reference": {**backlog, "throughput": 15_000.0},
        },
        "offline": {"events_per_s": 25_000.0},
        "state": {"mean_bytes": 1_000.0},
        "recovery": {"empty_disk_seconds": 40.0, "after_sigkill_seconds": 10.0},
        "rocksdb": {"users": 10, "disk_bytes": 2**20, "disk_bytes_per_user": 100.0},
        "inference": {  # as JSON gives them back: keys are strings
            "window": 50,
            "by_history": {
                "1": {"64": {"events_per_s": 30_000.0}},
                "50": {"64": {"events_per_s": 24_000.0}},  # 25,000 missed, at 1.25x the 1-event cost
            },
        },
        "large_catalogue": {"events_per_s": 2_500.0, "recall_at_20": 0.97},
        "diginetica_inference": {"results": {"64": {"events_per_s": 9_000.0}}},
    }
    results["checks"] = checks(results)
    met = {row["figure"]: row["met"] for row in results["checks"]}
    assert met == {
        "max rate: worker / quixstreams": True,
        "max rate: --no-model / quixstreams": False,
        "p99 ms at 1,000 events/s": False,
        "p99 ms at 250 events/s": True,
        "offline replay events/s": True,
        "state bytes per active user": True,
        "recovery s (empty disk)": False,
        "recovery s (after SIGKILL)": True,
        "model events/s, batch 64": False,
        "model cost, full window / 1 event": False,
        "Diginetica model events/s, b64": True,
        "1M-item catalogue events/s, b64": False,
        "1M-item catalogue recall@20": True,
    }
    measured = {row["figure"]: row["measured"] for row in results["checks"]}
    assert measured["model events/s, batch 64"] == 24_000.0
    assert measured["model cost, full window / 1 event"] == 1.25
    del results["diginetica_inference"]  # no Diginetica model built: not measured, so not met
    assert {row["figure"]: row["met"] for row in checks(results)}["Diginetica model events/s, b64"] is False
    text = table(results)
    assert "NO" in text and "quixstreams reference" in text and "5.33" in text  # 80,000 / 15,000


def test_the_maximum_rate_is_the_median_of_the_runs() -> None:
    # 20,000 outputs each: 5,000 / 20,000 / 10,000 events/s
    runs = [LoadResult(None, sent=20_000, received=20_000, seconds=s) for s in (4.0, 1.0, 2.0)]
    median = median_run(runs)
    assert median.throughput == 10_000.0
    assert median.as_dict()["runs"] == [5_000.0, 20_000.0, 10_000.0]  # in the order they ran
