"""The system panel's figures: rates and latency quantiles from consecutive samples of the worker's
own metrics, over a ring buffer of the last minutes."""

from __future__ import annotations

import pytest

from streams.live.metrics import LATENCY_BUCKETS, WorkerMetrics
from streams.live.system_history import LATENCY_TOPIC, SystemHistory, bucket_quantile, take_sample


def test_a_quantile_interpolates_inside_its_bucket_as_prometheus_does() -> None:
    bounds = (0.01, 0.1, 1.0)
    counts = (0.0, 10.0, 10.0, 10.0)  # ten observations between 10 and 100 ms
    assert bucket_quantile(0.5, bounds, counts) == pytest.approx(0.055)
    assert bucket_quantile(0.99, bounds, counts) == pytest.approx(0.0991)
    assert bucket_quantile(0.5, bounds, (0.0, 0.0, 0.0, 0.0)) is None
    assert bucket_quantile(0.5, bounds, (0.0, 0.0, 0.0, 4.0)) == 1.0  # only +Inf: the largest bound
    assert bucket_quantile(0.5, bounds, (4.0, 4.0, 4.0, 4.0)) == pytest.approx(0.005)


def test_a_sample_reads_the_worker_metrics() -> None:
    metrics = WorkerMetrics()
    metrics.events_in.labels("clicks").inc(5)
    metrics.events_in.labels("orders").inc(2)
    metrics.event_to_output.labels(LATENCY_TOPIC).observe(0.003)
    metrics.event_to_output.labels("promotion-triggers").observe(5.0)  # another output: not counted
    metrics.dead_letters.labels("missing_field").inc(3)
    sample = take_sample(metrics, lag=12, at=100.0)
    assert sample.events == 7
    assert sample.latency_bounds == LATENCY_BUCKETS
    assert sample.latency_counts[-1] == 1 and sample.latency_counts[0] == 0 and sample.latency_counts[2] == 1
    assert sample.lag == 12
    assert sample.dead_letters == {"missing_field": 3}


def test_the_summary_gives_rates_quantiles_and_dead_letters_over_the_window() -> None:
    metrics = WorkerMetrics()
    history = SystemHistory(window=60, every=2)
    assert history.summary()["events_per_second"] is None  # nothing to compare yet
    metrics.dead_letters.labels("bad_json").inc()  # before the window
    history.add(take_sample(metrics, lag=0, at=1000.0))
    metrics.events_in.labels("clicks").inc(20)
    for _ in range(10):
        metrics.event_to_output.labels(LATENCY_TOPIC).observe(0.004)
    metrics.dead_letters.labels("missing_field").inc(2)
    history.add(take_sample(metrics, lag=5, at=1002.0))
    summary = history.summary()
    assert summary["events_per_second"] == 10.0
    assert 2.5 < summary["p50_ms"] <= 5.0 and 2.5 < summary["p99_ms"] <= 5.0
    assert summary["lag"] == 5
    assert summary["dead_letters"] == {"missing_field": 2}
    assert summary["dead_letters_total"] == {"bad_json": 1, "missing_field": 2}
    assert [p["events_per_second"] for p in summary["points"]] == [10.0]


def test_the_ring_buffer_keeps_only_the_window() -> None:
    metrics = WorkerMetrics()
    history = SystemHistory(window=10, every=2)
    for second in range(0, 100, 2):
        metrics.events_in.labels("clicks").inc(4)
        history.add(take_sample(metrics, lag=0, at=float(second)))
    summary = history.summary()
    assert len(history.samples) == 6
    assert len(summary["points"]) == 5
    assert summary["events_per_second"] == 2.0
    assert summary["p50_ms"] is None  # no recommendation in the window


def test_what_happens_before_the_first_timed_sample_counts_from_the_start() -> None:
    metrics = WorkerMetrics()
    history = SystemHistory(window=60, every=2, started=100.0)
    metrics.events_in.labels("clicks").inc(4)  # a worker's first events, all before the first sample
    metrics.event_to_output.labels(LATENCY_TOPIC).observe(0.004)
    metrics.dead_letters.labels("missing_field").inc()
    history.add(take_sample(metrics, lag=0, at=102.0))
    history.add(take_sample(metrics, lag=0, at=104.0))
    summary = history.summary()
    assert summary["p50_ms"] is not None and 0 < summary["p50_ms"] <= 5
    assert summary["dead_letters"] == {"missing_field": 1}
    assert summary["points"][0]["events_per_second"] == 2.0
    unstarted = SystemHistory(window=60, every=2)
    unstarted.add(take_sample(metrics, lag=0, at=102.0))
    unstarted.add(take_sample(metrics, lag=0, at=104.0))
    assert unstarted.summary()["p50_ms"] is None  # without the start, nothing changed in the window
