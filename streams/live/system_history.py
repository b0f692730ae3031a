"""The worker's recent figures for the dashboard's system panel (`GET /system/summary`).

A sampler reads the worker's own metrics every few seconds into a ring buffer covering the last
minutes: events consumed, the event-to-recommendation latency histogram, consumer lag and dead
letters by code. The summary turns consecutive samples into rates and latency quantiles, so the
page gets figures, not Prometheus text.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from prometheus_client import Counter, Histogram

from streams.live.metrics import WorkerMetrics

SAMPLE_EVERY_SECONDS = 2.0
WINDOW_SECONDS = 300.0
RECENT_SECONDS = 10.0  # the "now" figures: events per second over this much of the newest samples
LATENCY_TOPIC = "recommendations"  # the output whose event-to-output latency the panel shows


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # wall clock, epoch seconds
    events: float  # input events consumed since start
    latency_bounds: tuple[float, ...]  # the histogram's finite upper bounds, seconds
    latency_counts: tuple[float, ...]  # cumulative observations per bound, then +Inf last
    lag: int  # input records behind the log end, summed over the owned partitions
    dead_letters: dict[str, float] = field(default_factory=dict)  # code -> count since start


def _samples(metric: Counter | Histogram, suffix: str) -> list[tuple[dict[str, str], float]]:
    return [
        (s.labels, s.value) for family in metric.collect() for s in family.samples if s.name.endswith(suffix)
    ]


def take_sample(metrics: WorkerMetrics, lag: int, at: float) -> Sample:
    """What the metrics say now (read through prometheus_client's public `collect`)."""
    events = sum(value for _, value in _samples(metrics.events_in, "_total"))
    buckets = sorted(
        (math.inf if labels["le"] == "+Inf" else float(labels["le"]), value)
        for labels, value in _samples(metrics.event_to_output, "_bucket")
        if labels.get("topic") == LATENCY_TOPIC
    )
    dead = {labels["code"]: value for labels, value in _samples(metrics.dead_letters, "_total")}
    return Sample(
        at=at,
        events=events,
        latency_bounds=tuple(bound for bound, _ in buckets if bound != math.inf),
        latency_counts=tuple(count for _, count in buckets),
        lag=lag,
        dead_letters=dead,
    )


def bucket_quantile(q: float, bounds: tuple[float, ...], counts: tuple[float, ...]) -> float | None:
    """The q-quantile of observations counted cumulatively per upper bound (the last count is +Inf),
    interpolated linearly inside its bucket as Prometheus' histogram_quantile does; None without
    observations. A quantile in the +Inf bucket is the largest finite bound."""
    if not counts or counts[-1] <= 0:
        return None
    rank = q * counts[-1]
    lower, below = 0.0, 0.0
    for index, count in enumerate(counts):
        if count >= rank:
            if index >= len(bounds):
                return bounds[-1] if bounds else None
            upper = bounds[index]
            inside = count - below
            return upper if inside <= 0 else lower + (upper - lower) * (rank - below) / inside
        lower = bounds[index] if index < len(bounds) else lower
        below = count
    return bounds[-1] if bounds else None


def _milliseconds(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _latency_between(first: Sample, last: Sample) -> tuple[float | None, float | None]:
    if first.latency_bounds != last.latency_bounds or len(first.latency_counts) != len(last.latency_counts):
        counts = last.latency_counts  # the buckets appeared in between: count from zero
    else:
        counts = tuple(b - a for a, b in zip(first.latency_counts, last.latency_counts, strict=True))
    bounds = last.latency_bounds
    return (
        _milliseconds(bucket_quantile(0.5, bounds, counts)),
        _milliseconds(bucket_quantile(0.99, bounds, counts)),
    )


def _rate(first: Sample, last: Sample) -> float:
    elapsed = last.at - first.at
    return 0.0 if elapsed <= 0 else round(max(0.0, last.events - first.events) / elapsed, 3)


class SystemHistory:
    """Samples of the last `window` seconds, and the summary the dashboard reads."""

    def __init__(
        self,
        window: float = WINDOW_SECONDS,
        every: float = SAMPLE_EVERY_SECONDS,
        started: float | None = None,
    ) -> None:
        """`started`: when the worker's counters were zero. It is the first sample, so what happens
        before the first timed one (a worker's first events can all fall there) is counted too."""
        self.window = window
        self.every = every
        self.samples: deque[Sample] = deque(maxlen=int(window / every) + 1)
        if started is not None:
            self.samples.append(Sample(at=started, events=0.0, latency_bounds=(), latency_counts=(), lag=0))

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    def summary(self) -> dict[str, Any]:
        samples = list(self.samples)
        document: dict[str, Any] = {
            "window_seconds": self.window,
            "sample_seconds": self.every,
            "latency_topic": LATENCY_TOPIC,
            "points": [],
            "events_per_second": None,
            "p50_ms": None,
            "p99_ms": None,
            "lag": samples[-1].lag if samples else None,
            "dead_letters": {},
            "dead_letters_total": dict(sorted(samples[-1].dead_letters.items())) if samples else {},
        }
        if len(samples) < 2:
            return document
        first, last = samples[0], samples[-1]
        recent = next((s for s in samples if last.at - s.at <= RECENT_SECONDS), samples[-2])
        if recent is last:
            recent = samples[-2]
        document["events_per_second"] = _rate(recent, last)
        document["p50_ms"], document["p99_ms"] = _latency_between(first, last)
        document["dead_letters"] = {
            code: count - first.dead_letters.get(code, 0.0)
            for code, count in sorted(last.dead_letters.items())
            if count - first.dead_letters.get(code, 0.0) > 0
        }
        for before, after in pairwise(samples):
            p50, p99 = _latency_between(before, after)
            document["points"].append(
                {
                    "at": round(after.at, 3),
                    "events_per_second": _rate(before, after),
                    "p50_ms": p50,
                    "p99_ms": p99,
                    "lag": after.lag,
                }
            )
        return document
