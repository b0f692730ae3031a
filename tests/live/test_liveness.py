"""Stall detection: lag without progress for too long, and nothing else."""

from __future__ import annotations

from streams.live.liveness import StallDetector


def test_a_busy_worker_that_stops_progressing_is_stalled_after_the_limit() -> None:
    detector = StallDetector(after=60)
    assert not detector.observe(processed=100, lag=500, now=0)
    assert not detector.observe(processed=180, lag=400, now=10)  # progress: fine
    assert not detector.observe(processed=180, lag=400, now=69)
    assert detector.observe(processed=180, lag=400, now=71)  # 61 s with input waiting, no progress
    assert not detector.observe(processed=181, lag=399, now=72)  # moving again


def test_an_idle_worker_is_never_stalled() -> None:
    detector = StallDetector(after=60)
    for now in range(0, 3_600, 30):
        assert not detector.observe(processed=42, lag=0, now=now)
    # input arrives after an hour of idleness: the clock starts now, not an hour ago
    assert not detector.observe(processed=42, lag=10, now=3_601)
    assert detector.stalled_for(3_601) < 60
