"""The inference figure of `make bench`, on the shipped default model."""

from __future__ import annotations

from streams.bench.run import table
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
