"""`streams replay --offline`: a log through the whole pipeline in one process, into files.

The same `Processor`, model runtime and rules as a worker, driven by event time through the
`OfflineEngine`. The files are deterministic: lines are written with sorted keys in processing
order, and the only wall-clock figures (run time and speed) sit in `summary.json`, where
`zero_wallclock` zeroes them so two runs compare byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.codec import MAX_VALUE_BYTES
from streams.collector import rare_collections
from streams.core.config import RulesConfig
from streams.core.demand import DEMAND
from streams.core.processor import PROMOTION_TRIGGERS, RECOMMENDATIONS, Processor
from streams.core.recommend import Recommender, TrendingOnly
from streams.core.segments import AUDIENCE_SEGMENTS
from streams.logs import LogRecord, write_log
from streams.offline.engine import OfflineEngine, OfflineResult
from streams.output_encoding import DEAD_LETTERS, OutputFormat, encode_output

OUTPUT_FILES = {
    RECOMMENDATIONS: "recommendations.jsonl",
    PROMOTION_TRIGGERS: "promotion-triggers.jsonl",
    AUDIENCE_SEGMENTS: "audience-segments.jsonl",
    "dead-letters": "dead-letters.jsonl",
    DEMAND: "demand.jsonl",
}
SUMMARY_FILE = "summary.json"
MESSAGES_FILE = "messages.jsonl"  # with an output format: the messages themselves, as an event log


@dataclass(frozen=True, slots=True)
class Variant:
    """What a replay runs with: a model artifact (None: trending only) and a rules file (None: defaults)."""

    model: Path | None = None
    rules: Path | None = None

    def recommender(self) -> Recommender:
        if self.model is None:
            return TrendingOnly()
        from streams.serving import ModelRecommender

        return ModelRecommender(self.model)

    def rules_config(self) -> RulesConfig:
        return RulesConfig.load(self.rules)

    def describe(self) -> str:
        parts = [f"model {self.model}" if self.model else "trending only"]
        parts.append(f"rules {self.rules}" if self.rules else "default rules")
        return ", ".join(parts)


@dataclass(slots=True)
class OfflineRun:
    variant: Variant
    version: str
    rules: RulesConfig
    result: OfflineResult
    partitions: int
    seconds: float

    @property
    def recommendations(self) -> list[dict[str, Any]]:
        return [o.value for o in self.result.outputs if o.topic == RECOMMENDATIONS]

    @property
    def triggers(self) -> list[dict[str, Any]]:
        return [o.value for o in self.result.outputs if o.topic == PROMOTION_TRIGGERS]

    @property
    def segment_events(self) -> list[dict[str, Any]]:
        return [o.value for o in self.result.outputs if o.topic == AUDIENCE_SEGMENTS]

    @property
    def demand(self) -> list[dict[str, Any]]:
        return [o.value for o in self.result.outputs if o.topic == DEMAND]

    def summary(self, zero_wallclock: bool = False) -> dict[str, Any]:
        result = self.result
        seconds = 0.0 if zero_wallclock else round(self.seconds, 3)
        rate = 0.0 if zero_wallclock or not self.seconds else round(result.events / self.seconds, 1)
        return {
            "model": str(self.variant.model) if self.variant.model else None,
            "model_version": self.version,
            "rules": self.rules.as_dict(),
            "partitions": self.partitions,
            "events": result.events,
            "applied": result.applied,
            "dead_letters": len(result.dead_letters),
            "users": len(result.states),
            "recommendations": len(self.recommendations),
            "triggers": dict(sorted(Counter(t["kind"] for t in self.triggers).items())),
            "segment_events": dict(
                sorted(Counter(f"{s['segment']}:{s['action']}" for s in self.segment_events).items())
            ),
            "demand": len(self.demand),
            "demand_late_events": sum(p.demand.late for p in result.partitions.values() if p.demand),
            "seconds": seconds,
            "events_per_s": rate,
        }


def run_offline(
    records: Iterable[LogRecord], variant: Variant, partitions: int, max_message_bytes: int = MAX_VALUE_BYTES
) -> OfflineRun:
    recommender = variant.recommender()
    rules = variant.rules_config()
    processor = Processor(recommender, rules, catalog={})
    started = time.perf_counter()
    with rare_collections():
        result = OfflineEngine(processor, partitions, max_message_bytes=max_message_bytes).run(records)
    return OfflineRun(variant, recommender.version, rules, result, partitions, time.perf_counter() - started)


def _line(value: dict[str, Any]) -> str:
    def bytes_as_base64(obj: object) -> str:
        if isinstance(obj, bytes):
            return base64.b64encode(obj).decode()
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable")

    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=bytes_as_base64) + "\n"


def output_messages(run: OfflineRun, fmt: OutputFormat) -> list[LogRecord]:
    """Every output as the message a worker sends in format `fmt`: the same value bytes and headers
    (a recommendation's `latency_ms` is 0 here), in processing order, dead letters last."""
    messages = [_message(o.topic, o.key, o.value, fmt) for o in run.result.outputs]
    for letter in run.result.dead_letters:
        key = None if letter["key"] is None else letter["key"].decode("utf-8", "backslashreplace")
        messages.append(_message(DEAD_LETTERS, key, letter, fmt))
    return messages


def _message(topic: str, key: str | None, value: dict[str, Any], fmt: OutputFormat) -> LogRecord:
    encoded, headers = encode_output(topic, value, fmt)
    text_headers = {name: raw.decode() for name, raw in headers}
    return LogRecord(topic, key, value["ts"], value_bytes=encoded, headers=text_headers)


def write_run(
    run: OfflineRun, out: Path, zero_wallclock: bool = False, output_format: OutputFormat | None = None
) -> dict[str, Path]:
    """The output files and the summary (and, with an output format, the messages file); returns
    their paths by name."""
    out.mkdir(parents=True, exist_ok=True)
    rows = {
        RECOMMENDATIONS: run.recommendations,
        PROMOTION_TRIGGERS: run.triggers,
        AUDIENCE_SEGMENTS: run.segment_events,
        "dead-letters": run.result.dead_letters,
        DEMAND: run.demand,
    }
    paths: dict[str, Path] = {}
    for name, values in rows.items():
        path = paths[name] = out / OUTPUT_FILES[name]
        with path.open("w", encoding="utf-8") as f:
            f.writelines(_line(v) for v in values)
    if output_format is not None:
        paths["messages"] = out / MESSAGES_FILE
        write_log(paths["messages"], output_messages(run, output_format))
    summary = run.summary(zero_wallclock)
    summary["files"] = {name: _digest(path) for name, path in paths.items()}
    paths["summary"] = out / SUMMARY_FILE
    paths["summary"].write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return paths


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
