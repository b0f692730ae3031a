"""The inference figure of `make bench`, on the shipped default model."""

from __future__ import annotations

from typing import Any

import pytest

from streams.bench.run import table
from streams.model import bench
from streams.model.bench import inference_throughput
from tests.model.test_runtime import DEFAULT_MODEL


def test_inference_is_measured_per_history_length_and_batch_size() -> None:
    report = inference_throughput(DEFAULT_MODEL, (1, 4), seconds=0.05, history_lengths=(1, None))
    window = report["window"]
    assert list(report["by_history"]) == [1, window]
    assert report["results"] is report["by_history"][window]
    for sizes in report["by_history"].values():
        assert list(sizes) == [1, 4]
        assert all(r["events_per_s"] > 0 and r["ms_per_call"] > 0 for r in sizes.values())
    assert report["mode"] == "step"  # timed with carried states, as the worker serves

    results = {
        "inference": report,
        "rocksdb": {"users": 1, "disk_bytes": 0, "disk_bytes_per_user": 0},
        "max_rate": {"quixstreams reference": {"throughput": 1.0}},
        **{"checks": [], "worker": [], "passthrough": []},
    }
    lines = table(results).splitlines()
    assert any(line.strip().startswith("1-event history: batch 1:") for line in lines)
    assert any(line.strip().startswith(f"{window}-event history: batch 1:") for line in lines)


def test_settings_are_timed_in_turns_and_their_median_turn_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, int]] = []
    speeds = iter([5.0, 1.0, 9.0, 2.0, 7.0, 3.0, 8.0, 4.0, 6.0, 10.0])  # 5 rounds x 2 settings

    def timed(recommender: object, pool: list[Any], size: int, seconds: float, k: int) -> dict[str, float]:
        calls.append((len(pool[0]), size))
        return {"events_per_s": next(speeds), "ms_per_call": 1.0, "cpu_events_per_s": 1.0}

    monkeypatch.setattr(bench, "_throughput", timed)
    report = bench.inference_throughput(DEFAULT_MODEL, (4,), seconds=1.0, history_lengths=(1, 3), rounds=5)
    assert calls == [(1, 4), (3, 4)] * 5  # one turn of each setting per round, not one setting after another
    assert report["by_history"][1][4]["events_per_s"] == 7.0  # median of 5, 9, 7, 8, 6
    assert report["by_history"][3][4]["events_per_s"] == 3.0  # median of 1, 2, 3, 4, 10
