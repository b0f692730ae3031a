"""`streams soak`: generated traffic for a long stretch, the worker SIGKILLed and restarted
periodically, and an account of every event sent: each valid one must come back as a
recommendation and each hostile one as a dead letter, or it is lost. The worker's resident memory
is sampled throughout, so a leak shows as a slope.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streams.bench.poison import is_poison, with_poison
from streams.bench.run import isolated
from streams.bench.traffic import OutputWatcher, clicks, paced, recommendation_cause
from streams.codec import decode_value, encode_key
from streams.config import Settings
from streams.kafka.clients import librdkafka_config
from streams.kafka.produce import make_producer
from streams.kafka.topics import ensure_topics
from streams.live.process import WorkerProcess

WARM_UP_SECONDS = 60.0  # a fresh worker's memory grows while it loads the model and its tables
# A worker life's memory is flat when RSS outside the RocksDB cache (which is bounded and fills as
# the tables grow) grows slower than this over the life's second half. A 5-minute fit over 30 s
# samples with 1 MiB of noise has a standard error near 13 MiB/h, and this is three times that; the
# leaks `make soak` found grew 150 to 240 MiB/h.
FLAT_MIB_PER_HOUR = 40.0


@dataclass(frozen=True, slots=True)
class SoakConfig:
    minutes: float = 30.0
    # Events/s offered: an eighth of the worker's maximum on two idle cores (`streams bench`), so a
    # restarted worker catches up on its backlog even when the machine is shared.
    rate: float = 100.0
    kill_every: float = 300.0  # seconds between SIGKILLs of the worker
    sample_every: float = 30.0  # seconds between memory samples
    drain_timeout: float = 1200.0  # after the last send, how long the outputs may take
    users: int = 20_000
    items: int = 2_000  # the shipped model's catalogue size
    poison_every: int = 500  # a hostile message after every n-th click
    partitions: int = 8
    seed: int = 7


@dataclass(slots=True)
class Sample:
    seconds: float  # since the first send
    sent: int
    recommendations: int  # distinct causes with a recommendation so far
    dead_letters: int  # distinct source messages in dead-letters so far
    rss_mib: float | None  # the worker's resident memory (None while it is down)
    worker: int  # which incarnation of the worker (0 = the first, +1 per kill)
    # RocksDB's shared block cache, memtables included (the worker's /metrics): bounded by
    # STREAMS_ROCKSDB_CACHE_MB, it fills as the tables grow; what is left of RSS must stay flat.
    cache_mib: float | None = None
    # Every part of `streams_memory_bytes` (MiB) and `streams_python_blocks`: where RSS went.
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def outside_cache_mib(self) -> float | None:
        if self.rss_mib is None or self.cache_mib is None:
            return None
        return round(self.rss_mib - self.cache_mib, 1)


@dataclass
class SoakResult:
    config: SoakConfig
    events_in: int = 0
    valid: int = 0
    hostile: int = 0
    recommendations: int = 0  # distinct valid events with a recommendation
    recommendation_copies: int = 0  # re-emissions after a kill (same id, de-duplicable)
    dead_letters: int = 0  # distinct hostile messages in dead-letters
    triggers: int = 0  # distinct promotion triggers
    kills: int = 0
    crashes: int = 0  # exits nobody asked for (restarted, as an orchestrator would)
    seconds: float = 0.0
    samples: list[Sample] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.events_in - self.recommendations - self.dead_letters

    def memory(self) -> dict[str, Any]:
        """Per worker incarnation after its warm-up: first and last RSS and the slope (MiB/hour)."""
        rows = []
        for worker in sorted({s.worker for s in self.samples}):
            mine = [s for s in self.samples if s.worker == worker and s.rss_mib is not None]
            if not mine:
                continue
            started = mine[0].seconds
            warm = [s for s in mine if s.seconds - started >= WARM_UP_SECONDS]
            # The second half of a life says whether memory levels off: growth that goes on there
            # is a leak, growth only in the first half is caches and tables filling.
            late = [s for s in warm if s.seconds - started >= (mine[-1].seconds - started) / 2]
            slope, late_slope = _slope(warm), _slope(late)
            outside = [s for s in warm if s.outside_cache_mib is not None]
            outside_late = [s for s in late if s.outside_cache_mib is not None]
            caches = [s.cache_mib for s in mine if s.cache_mib is not None]
            rows.append(
                {
                    "worker": worker,
                    "minutes": round((mine[-1].seconds - started) / 60, 1),
                    "first_mib": (warm or mine)[0].rss_mib,
                    "last_mib": mine[-1].rss_mib,
                    "max_mib": max(s.rss_mib for s in mine if s.rss_mib is not None),
                    "slope_mib_per_hour": slope,
                    "second_half_slope_mib_per_hour": late_slope,
                    "max_cache_mib": max(caches) if caches else None,
                    "outside_cache_slope_mib_per_hour": _slope(outside, outside=True),
                    "outside_cache_second_half_slope_mib_per_hour": _slope(outside_late, outside=True),
                }
            )
            late_growth = rows[-1]["outside_cache_second_half_slope_mib_per_hour"]
            rows[-1]["flat"] = None if late_growth is None else late_growth < FLAT_MIB_PER_HOUR
        judged = [row["flat"] for row in rows if row["flat"] is not None]
        return {"per_worker": rows, "flat": bool(judged) and all(judged)}

    def as_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "events_in": self.events_in,
            "valid": self.valid,
            "hostile": self.hostile,
            "recommendations": self.recommendations,
            "recommendation_copies": self.recommendation_copies,
            "dead_letters": self.dead_letters,
            "lost": self.lost,
            "triggers": self.triggers,
            "kills": self.kills,
            "crashes": self.crashes,
            "seconds": round(self.seconds, 1),
            "memory": self.memory(),
            "samples": [asdict(s) for s in self.samples],
        }


def _slope(samples: list[Sample], outside: bool = False) -> float | None:
    """Least-squares growth in MiB per hour of RSS, or of RSS outside the RocksDB cache (None for
    fewer than 3 samples)."""
    if len(samples) < 3:
        return None
    hours = np.array([s.seconds for s in samples]) / 3600.0
    mib = [s.outside_cache_mib if outside else s.rss_mib for s in samples]
    return round(float(np.polyfit(hours, mib, 1)[0]), 1)


def memory_parts(worker: WorkerProcess) -> dict[str, float]:
    """The worker's memory by part from its /metrics, in MiB, and its Python block count (empty
    while it is down)."""
    try:
        metrics = worker.metrics()
    except OSError:
        return {}
    parts = {
        part: round(float(value) / 2**20, 1)
        for part, value in re.findall(r'^streams_memory_bytes\{part="(\w+)"\} (\S+)$', metrics, re.M)
    }
    blocks = re.search(r"^streams_python_blocks (\S+)$", metrics, re.M)
    if blocks:
        parts["python_blocks"] = float(blocks.group(1))
    return parts


def rss_mib(pid: int) -> float | None:
    """Resident set size of a process, from /proc (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def trigger_id(raw: bytes) -> str:
    return str(decode_value(raw)["trigger_id"])


def dead_letter_source(raw: bytes) -> str:
    """A dead letter's cause: the source message's topic, partition and offset."""
    value = decode_value(raw)
    return f"{value['source_topic']}/{value['partition']}/{value['offset']}"


class Soak:
    def __init__(self, config: SoakConfig, base: Settings, scratch: Path) -> None:
        self.config = config
        self.settings = isolated(base, config.partitions, scratch, "soak")
        self.worker = WorkerProcess(self.settings, scratch / f"{self.settings.app_id}.log", tick_seconds=5.0)
        self.result = SoakResult(config)
        self.started = 0.0

    def run(self) -> SoakResult:
        config = self.config
        events = int(config.rate * config.minutes * 60)
        valid = clicks(config.users, config.items, events, config.seed)
        records = list(with_poison(valid, config.poison_every, config.seed))
        self.result.events_in = len(records)
        self.result.hostile = sum(map(is_poison, records))
        self.result.valid = len(records) - self.result.hostile
        ensure_topics(self.settings)
        self.worker.start().wait_ready()
        producer = make_producer(self.settings)
        recs, letters, triggers = (
            OutputWatcher(librdkafka_config(self.settings), self.settings.topic(topic), cause_of)
            for topic, cause_of in (
                ("recommendations", recommendation_cause),
                ("dead-letters", dead_letter_source),
                ("promotion-triggers", trigger_id),
            )
        )
        # Never in the last half minute of sending: the last worker must be seen running a while.
        kills = list(np.arange(config.kill_every, config.minutes * 60 - 30, config.kill_every))
        try:
            with recs, letters, triggers:
                self.started = time.monotonic()
                next_sample = 0.0
                for n, record in paced(records, config.rate):
                    producer.send(
                        self.settings.topic(record.topic),
                        key=encode_key(record.key),
                        value=record.wire_value(),
                        timestamp_ms=record.ts,
                    )
                    elapsed = time.monotonic() - self.started
                    if kills and elapsed >= kills[0]:
                        kills.pop(0)
                        self._kill_and_restart()
                    if elapsed >= next_sample:
                        self._sample(n + 1, recs, letters)
                        next_sample += config.sample_every
                producer.flush()
                deadline = time.monotonic() + config.drain_timeout
                while time.monotonic() < deadline and self._accounted(recs, letters) < len(records):
                    time.sleep(1.0)
                    if time.monotonic() - self.started >= next_sample:
                        self._sample(len(records), recs, letters)
                        next_sample += config.sample_every
                self._sample(len(records), recs, letters)
        finally:
            producer.close()
            self.worker.stop()
        self.result.seconds = time.monotonic() - self.started
        self.result.recommendations = len(recs.arrived)
        self.result.recommendation_copies = sum(recs.copies.values()) - len(recs.copies)
        self.result.dead_letters = len(letters.arrived)
        self.result.triggers = len(triggers.arrived)
        return self.result

    @staticmethod
    def _accounted(recs: OutputWatcher, letters: OutputWatcher) -> int:
        return len(recs.arrived) + len(letters.arrived)

    def _kill_and_restart(self) -> None:
        """SIGKILL at whatever the worker is doing; the replacement starts at once, traffic goes on."""
        self.worker.kill()
        self.result.kills += 1
        print(f"  {time.monotonic() - self.started:7.0f} s  SIGKILL #{self.result.kills}, restarting")
        self.worker.start()

    def _sample(self, sent: int, recs: OutputWatcher, letters: OutputWatcher) -> None:
        assert self.worker.process is not None
        if self.worker.process.poll() is not None:
            self.result.crashes += 1
            print(
                f"  worker exited by itself ({self.worker.process.returncode}):\n{self.worker.log_tail(20)}"
            )
            self.worker.start()
        sample = Sample(
            seconds=round(time.monotonic() - self.started, 1),
            sent=sent,
            recommendations=len(recs.arrived),
            dead_letters=len(letters.arrived),
            rss_mib=rss_mib(self.worker.process.pid),
            worker=self.result.kills,
        )
        sample.parts = memory_parts(self.worker)
        sample.cache_mib = sample.parts.get("cache")
        self.result.samples.append(sample)
        print(
            f"  {sample.seconds:7.0f} s  sent {sample.sent:>8,}  recommendations {sample.recommendations:>8,}"
            f"  dead letters {sample.dead_letters:>6,}  worker #{sample.worker} RSS {sample.rss_mib} MiB"
            f" (RocksDB cache {sample.cache_mib}; C heap in use {sample.parts.get('heap_in_use')},"
            f" mapped {sample.parts.get('heap_mapped')}, free {sample.parts.get('heap_free')};"
            f" table readers {sample.parts.get('table_readers')})"
        )


def run_soak(config: SoakConfig, base: Settings, out: Path) -> SoakResult:
    scratch = Path(".cache") / "soak"
    scratch.mkdir(parents=True, exist_ok=True)
    result = Soak(config, base, scratch).run()
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(result.as_dict(), indent=1) + "\n", encoding="utf-8")
    return result


def summary(result: SoakResult) -> str:
    lines = [
        f"{result.seconds / 60:.1f} min, {result.kills} SIGKILLs of the worker, {result.crashes} crashes",
        f"events in          {result.events_in:>9,} ({result.valid:,} valid, {result.hostile:,} hostile)",
        f"recommendations    {result.recommendations:>9,}"
        f" (+{result.recommendation_copies:,} copies re-emitted after kills)",
        f"dead letters       {result.dead_letters:>9,}",
        f"promotion triggers {result.triggers:>9,}",
        f"lost               {result.lost:>9,}",
        "worker RSS after warm-up (MiB): first -> last, max, slope (whole life; second half);"
        " RocksDB cache max; slope of RSS outside the cache (whole life; second half)",
    ]

    def rate(value: float | None) -> str:
        return "n/a" if value is None else f"{value:+.1f} MiB/h"

    memory = result.memory()
    for row in memory["per_worker"]:
        lines.append(
            f"  #{row['worker']} {row['minutes']:>5.1f} min  {row['first_mib']} -> {row['last_mib']}, "
            f"max {row['max_mib']}, {rate(row['slope_mib_per_hour'])}; "
            f"{rate(row['second_half_slope_mib_per_hour'])}; cache max {row['max_cache_mib']}; outside it"
            f" {rate(row['outside_cache_slope_mib_per_hour'])}; "
            f"{rate(row['outside_cache_second_half_slope_mib_per_hour'])}"
        )
    growing = [f"#{row['worker']}" for row in memory["per_worker"] if row["flat"] is False]
    verdict = (
        f"flat (every life under {FLAT_MIB_PER_HOUR:.0f} MiB/h outside the cache in its second half)"
        if memory["flat"]
        else f"NOT FLAT: {', '.join(growing) or 'no life long enough to judge'}"
    )
    lines.append(f"memory             {verdict}")
    return "\n".join(lines)
