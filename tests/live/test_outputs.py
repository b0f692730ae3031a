"""OutputSink: the core's outputs as records of a checkpoint on the physical topics, the latest
recommendation as a table write of the user's partition, and the live feed held back until the
checkpoint is durable (a feed must never show what a crash could take back)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import msgpack
import pytest

from streams.config import Settings
from streams.core.demand import DEMAND
from streams.core.processor import PROMOTION_TRIGGERS, RECOMMENDATIONS, Output
from streams.core.segments import AUDIENCE_SEGMENTS
from streams.errors import BadMessage
from streams.live.checkpoint import Checkpoint
from streams.live.metrics import WorkerMetrics
from streams.live.outputs import OutputSink
from streams.live.records import InputRecord
from streams.partitioning import partition_for

SETTINGS = Settings(topic_prefix="t-", partitions=8)
TS = 1_700_000_000_000
RECOMMENDATION = Output(RECOMMENDATIONS, "u1", {"rec_id": "r-1", "items": ["sku-1"], "ts": TS})
TRIGGER = Output(PROMOTION_TRIGGERS, "u1", {"trigger_id": "t-1", "kind": "cart_abandoned", "ts": TS})
SEGMENT = Output(
    AUDIENCE_SEGMENTS, "u2", {"event_id": "s-1", "segment": "big_spender", "action": "enter", "ts": TS}
)
WINDOW = Output(DEMAND, "sku-1", {"demand_id": "d-1", "scope": "sku", "count": 3, "ts": TS}, partition=5)


def decode(raw: bytes | None) -> dict[str, Any]:
    assert raw is not None
    value: dict[str, Any] = msgpack.unpackb(raw, raw=False)
    return value


def user_partition(user_id: str) -> int:
    return partition_for(user_id, SETTINGS.partitions)


@pytest.fixture
def sink() -> OutputSink:
    return OutputSink(SETTINGS, WorkerMetrics())


def sample(sink: OutputSink, name: str, labels: dict[str, str] | None = None) -> float | None:
    return sink.metrics.registry.get_sample_value(name, labels or {})


def test_outputs_are_records_on_the_physical_topics(sink: OutputSink) -> None:
    checkpoint = Checkpoint()
    sink.add(checkpoint, [RECOMMENDATION, TRIGGER, SEGMENT, WINDOW])
    assert [(r.topic, r.key, r.partition) for r in checkpoint.outputs] == [
        ("t-recommendations", b"u1", None),
        ("t-promotion-triggers", b"u1", None),
        ("t-audience-segments", b"u2", None),
        ("t-demand", b"sku-1", 5),  # demand keeps its input partition's number
    ]
    assert decode(checkpoint.outputs[1].value) == TRIGGER.value
    assert decode(checkpoint.outputs[3].value) == WINDOW.value


def test_a_recommendation_carries_its_latency_and_writes_no_table(sink: OutputSink) -> None:
    recommendation = Output(RECOMMENDATIONS, "u4", {"rec_id": "r-4", "items": ["sku-2"], "ts": TS})
    checkpoint = Checkpoint()
    started = time.perf_counter() - 0.25  # the batch began 250 ms ago
    sink.add(checkpoint, [recommendation, SEGMENT], started=started)
    assert not checkpoint.writes  # the latest recommendation is in the user state
    value = decode(checkpoint.outputs[0].value)
    assert value["items"] == ["sku-2"]
    assert 250 <= value["latency_ms"] < 250 + 60_000
    assert "latency_ms" not in recommendation.value  # the core's output is not changed in place
    assert "latency_ms" not in decode(checkpoint.outputs[1].value)  # only recommendations carry it


def test_without_a_start_no_latency_is_made_up(sink: OutputSink) -> None:
    checkpoint = Checkpoint()
    sink.add(checkpoint, [RECOMMENDATION])
    assert decode(checkpoint.outputs[0].value) == RECOMMENDATION.value


def test_the_feed_goes_out_only_once_published_and_never_with_demand(sink: OutputSink) -> None:
    published: list[tuple[str, dict[str, Any]]] = []
    checkpoint = Checkpoint()
    sink.add(checkpoint, [RECOMMENDATION, WINDOW, SEGMENT, TRIGGER], started=time.perf_counter())
    assert published == []  # adding is not publishing: nothing is produced yet

    sink.published(lambda user_id, message: published.append((user_id, message)))
    assert [(user, message["topic"]) for user, message in published] == [
        ("u1", RECOMMENDATIONS),
        ("u2", AUDIENCE_SEGMENTS),
        ("u1", PROMOTION_TRIGGERS),
    ]
    assert "latency_ms" in published[0][1]["value"]  # the feed shows what was sent
    assert published[1][1]["value"] == SEGMENT.value

    sink.published(lambda user_id, message: published.append((user_id, message)))
    assert len(published) == 3  # each message once


def test_a_discarded_checkpoints_feed_is_never_published(sink: OutputSink) -> None:
    sink.add(Checkpoint(), [RECOMMENDATION, TRIGGER])
    sink.discard_feed()
    published: list[str] = []
    sink.published(lambda user_id, _: published.append(user_id))
    assert published == []


def test_counts_and_metrics_per_kind(sink: OutputSink) -> None:
    checkpoint = Checkpoint()
    sink.add(checkpoint, [RECOMMENDATION, RECOMMENDATION, TRIGGER, SEGMENT, WINDOW, WINDOW, WINDOW])
    assert sink.counts.as_dict() == {
        "recommendations": 2,
        "triggers": 1,
        "segment_events": 1,
        "demand": 3,
        "dead_letters": 0,
    }
    assert sample(sink, "streams_recommendations_total") == 2
    assert sample(sink, "streams_triggers_total", {"kind": "cart_abandoned"}) == 1
    labels = {"segment": "big_spender", "action": "enter"}
    assert sample(sink, "streams_segment_events_total", labels) == 1
    assert sample(sink, "streams_demand_windows_total", {"scope": "sku"}) == 3


def test_a_dead_letter_goes_to_the_dead_letters_topic_with_the_reason(sink: OutputSink) -> None:
    checkpoint = Checkpoint()
    record = InputRecord("t-clicks", 2, 17, 1_700_000_000_500, b"u1", b"\xff not json")
    sink.dead_letter(checkpoint, record, BadMessage("bad_json", "not valid JSON", field="value"))
    (sent,) = checkpoint.outputs
    assert (sent.topic, sent.key, sent.partition) == ("t-dead-letters", b"u1", None)
    value = decode(sent.value)
    assert value["error"] == {"code": "bad_json", "message": "not valid JSON", "field": "value"}
    assert (value["source_topic"], value["partition"], value["offset"]) == ("t-clicks", 2, 17)
    assert value["value"] == b"\xff not json"  # the original bytes, to be replayed once fixed
    assert value["ts"] == 1_700_000_000_500  # the record's own time
    assert not checkpoint.writes
    assert sink.counts.dead_letters == 1
    assert sample(sink, "streams_dead_letters_total", {"code": "bad_json"}) == 1
    published: list[str] = []
    sink.published(lambda user_id, _: published.append(user_id))
    assert published == []  # a dead letter is no feed message


def test_a_dead_letter_without_a_timestamp_is_stamped_now(sink: OutputSink) -> None:
    checkpoint = Checkpoint()
    before = int(time.time() * 1000)
    sink.dead_letter(checkpoint, InputRecord("t-orders", 0, 1, None, None, b"x"), BadMessage("e", "m"))
    after = int(time.time() * 1000)
    value = decode(checkpoint.outputs[0].value)
    assert before <= value["ts"] <= after
    assert checkpoint.outputs[0].key is None
    assert value["error"] == {"code": "e", "message": "m"}


def test_event_to_output_latency_is_observed_when_the_outputs_are_produced(sink: OutputSink) -> None:
    checkpoint = Checkpoint()
    read_at = time.monotonic() - 0.2  # the cause was read 200 ms ago
    sink.add(checkpoint, [RECOMMENDATION, TRIGGER], time.perf_counter(), read_at)
    sink.add(checkpoint, [SEGMENT])  # no cause read off Kafka (a wall-clock timer): not measured
    name = "streams_event_to_output_seconds"
    assert sample(sink, f"{name}_count", {"topic": RECOMMENDATIONS}) is None  # not produced yet
    sink.published(lambda user_id, message: None)
    assert sample(sink, f"{name}_count", {"topic": RECOMMENDATIONS}) == 1
    assert sample(sink, f"{name}_count", {"topic": PROMOTION_TRIGGERS}) == 1
    assert sample(sink, f"{name}_count", {"topic": AUDIENCE_SEGMENTS}) is None
    waited = sample(sink, f"{name}_sum", {"topic": RECOMMENDATIONS})
    assert waited is not None and 0.2 <= waited < 60
    assert sample(sink, f"{name}_bucket", {"topic": RECOMMENDATIONS, "le": "0.1"}) == 0
    sink.published(lambda user_id, message: None)  # observed once
    assert sample(sink, f"{name}_count", {"topic": RECOMMENDATIONS}) == 1


def test_every_output_carries_cloudevents_headers_and_msgpack_no_content_type(sink: OutputSink) -> None:
    checkpoint = Checkpoint()
    sink.add(checkpoint, [RECOMMENDATION, TRIGGER, SEGMENT, WINDOW])
    record = InputRecord("t-clicks", 2, 17, 1_700_000_000_500, b"u1", b"\xff")
    sink.dead_letter(checkpoint, record, BadMessage("bad_msgpack", "not msgpack"))
    ids = []
    for sent in checkpoint.outputs:
        headers = dict(sent.headers)
        assert "content-type" not in headers
        assert headers["ce_specversion"] == b"1.0"
        assert headers["ce_source"] == b"/streams/" + sent.topic.removeprefix("t-").encode()
        ids.append(headers["ce_id"])
    assert ids[:4] == [b"r-1", b"t-1", b"s-1", b"d-1"]  # each output's own deterministic id
    assert ids[4].startswith(b"d-")
    assert dict(checkpoint.outputs[1].headers)["ce_time"] == b"2023-11-14T22:13:20.000Z"
    assert dict(checkpoint.outputs[4].headers)["ce_time"] == b"2023-11-14T22:13:20.500Z"


def test_json_outputs_say_so_and_keep_the_values() -> None:
    sink = OutputSink(replace(SETTINGS, output_format="json"), WorkerMetrics())
    checkpoint = Checkpoint()
    sink.add(checkpoint, [TRIGGER, WINDOW])
    record = InputRecord("t-clicks", 2, 17, 1_700_000_000_500, b"u1", b"\xff")
    sink.dead_letter(checkpoint, record, BadMessage("bad_msgpack", "not msgpack"))
    trigger, window, letter = checkpoint.outputs
    for sent in checkpoint.outputs:
        assert dict(sent.headers)["content-type"] == b"application/json"
        assert dict(sent.headers)["ce_type"].startswith(b"streams.")
    assert json.loads(trigger.value or b"") == TRIGGER.value
    assert json.loads(window.value or b"") == WINDOW.value
    assert json.loads(letter.value or b"")["value"] == "/w=="  # the original bytes, base64 in JSON
