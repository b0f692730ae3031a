"""The soak's bookkeeping without a broker: hostile traffic, lost events, memory slopes."""

from __future__ import annotations

import os

from streams.bench.poison import KINDS, is_poison, with_poison
from streams.bench.soak import Sample, SoakConfig, SoakResult, dead_letter_source, rss_mib, summary
from streams.codec import encode_value
from streams.errors import BadMessage
from streams.generate import TrafficConfig, generate_traffic
from streams.ingest import parse_user_event


def test_every_hostile_message_is_refused_and_follows_its_click() -> None:
    traffic = list(generate_traffic(TrafficConfig(users=50, items=100, events=2_000, seed=1)))
    mixed = list(with_poison(traffic, every=10, seed=1))
    hostile = [(n, r) for n, r in enumerate(mixed) if is_poison(r)]
    assert len(hostile) == sum(r.topic == "clicks" for r in traffic) // 10
    assert [r for r in mixed if not is_poison(r)] == traffic  # the valid traffic is untouched
    codes = set()
    for n, record in hostile:
        click = mixed[n - 1]
        assert click.topic == "clicks" and (record.key, record.ts) == (click.key, click.ts)
        try:
            parse_user_event("clicks", (record.key or "").encode(), record.wire_value(), [])
        except BadMessage as exc:
            codes.add(exc.code)
        else:
            raise AssertionError(f"accepted: {record}")
    assert len(codes) == KINDS
    assert list(with_poison(traffic, every=10, seed=1)) == mixed  # seeded: the same every time


def test_lost_is_what_came_back_neither_as_recommendation_nor_as_dead_letter() -> None:
    result = SoakResult(SoakConfig(), events_in=1_000, valid=990, hostile=10)
    result.recommendations, result.dead_letters = 985, 10
    assert result.lost == 5
    result.recommendations = 990
    assert result.lost == 0


def test_memory_slope_per_worker_after_its_warm_up() -> None:
    result = SoakResult(SoakConfig())
    # Worker 0 leaks 1 MiB a minute after a warm-up spike; worker 1 is flat.
    for minute in range(10):
        rss = 500.0 if minute == 0 else 300.0 + minute
        result.samples.append(Sample(minute * 60.0, 0, 0, 0, rss, worker=0))
    for minute in range(10, 20):
        result.samples.append(Sample(minute * 60.0, 0, 0, 0, 280.0, worker=1))
    result.samples.append(Sample(1_230.0, 0, 0, 0, None, worker=1))  # sampled while it was down
    rows = {row["worker"]: row for row in result.memory()["per_worker"]}
    assert rows[0]["slope_mib_per_hour"] == 60.0 and rows[0]["first_mib"] == 301.0
    assert rows[0]["max_mib"] == 500.0
    assert rows[1]["slope_mib_per_hour"] == 0.0 and rows[1]["last_mib"] == 280.0
    assert rows[0]["second_half_slope_mib_per_hour"] == 60.0  # a leak goes on to the end


def test_memory_that_fills_caches_then_levels_off_is_flat_in_the_second_half() -> None:
    result = SoakResult(SoakConfig())
    for minute in range(20):
        result.samples.append(Sample(minute * 60.0, 0, 0, 0, 250.0 + min(minute, 8) * 5, worker=0))
    row = result.memory()["per_worker"][0]
    assert row["slope_mib_per_hour"] > 0 and row["second_half_slope_mib_per_hour"] == 0.0


def test_a_dead_letter_is_known_by_its_source_message() -> None:
    letter = {"source_topic": "x-clicks", "partition": 3, "offset": 41, "error": {"code": "bad_msgpack"}}
    assert dead_letter_source(encode_value(letter)) == "x-clicks/3/41"


def test_rss_of_this_process_and_of_none() -> None:
    mine = rss_mib(os.getpid())
    assert mine is not None and mine > 10
    assert rss_mib(2**22 + 12_345) is None  # above the kernel's pid limit: never a process


def test_growth_of_the_rocksdb_cache_alone_is_flat_outside_it() -> None:
    result = SoakResult(SoakConfig())
    for minute in range(20):
        cache = 20.0 + min(minute, 15) * 3  # fills up to its bound, then stays
        result.samples.append(Sample(minute * 60.0, 0, 0, 0, 150.0 + cache, worker=0, cache_mib=cache))
    row = result.memory()["per_worker"][0]
    assert row["slope_mib_per_hour"] > 100 and row["max_cache_mib"] == 65.0
    assert row["outside_cache_slope_mib_per_hour"] == 0.0
    assert row["outside_cache_second_half_slope_mib_per_hour"] == 0.0


def test_flat_memory_is_every_judged_life_flat_outside_the_cache() -> None:
    result = SoakResult(SoakConfig())
    for minute in range(10):  # worker 0: only the cache grows
        cache = 20.0 + minute * 4
        result.samples.append(Sample(minute * 60.0, 0, 0, 0, 150.0 + cache, worker=0, cache_mib=cache))
    result.samples.append(Sample(600.0, 0, 0, 0, 170.0, worker=1, cache_mib=20.0))  # too short to judge
    memory = result.memory()
    assert [row["flat"] for row in memory["per_worker"]] == [True, None] and memory["flat"]
    assert "memory             flat" in summary(result)
    for minute in range(11, 21):  # worker 2: 1 MiB a minute outside the cache
        result.samples.append(Sample(minute * 60.0, 0, 0, 0, 200.0 + minute, worker=2, cache_mib=30.0))
    memory = result.memory()
    assert memory["per_worker"][-1]["flat"] is False and not memory["flat"]
    assert "NOT FLAT: #2" in summary(result)
    assert not SoakResult(SoakConfig()).memory()["flat"]  # nothing judged is not flat
