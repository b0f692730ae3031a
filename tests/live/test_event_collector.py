"""The collector judges each event of a batch as the worker's ingest path would, and answers per event."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from streams.codec import decode_value
from streams.config import Settings
from streams.live.collector_web import write_key_valid
from streams.live.event_collector import (
    COLLECTOR_SOURCE,
    MAX_BATCH_EVENTS,
    SOURCE_HEADER,
    BadBatch,
    EventCollector,
    read_batch,
)
from streams.partitioning import partition_for

NOW = 1_700_000_000_000
SETTINGS = Settings(topic_prefix="t-", partitions=6)


class DeliveredMessage:
    def __init__(self, partition: int) -> None:
        self._partition = partition

    def partition(self) -> int:
        return self._partition


class FakeProducer:
    """Acknowledges each record on the partition murmur2 gives its key, or fails the topics in `down`."""

    def __init__(self, down: tuple[str, ...] = ()) -> None:
        self.down = down
        self.written: list[dict[str, Any]] = []
        self.pending: list[tuple[Callable[..., None], int, str]] = []

    def produce(self, topic: str, value: bytes, key: bytes | None, **kwargs: Any) -> None:
        partition = partition_for(key, SETTINGS.partitions)
        self.written.append({"topic": topic, "value": value, "key": key, "partition": partition, **kwargs})
        self.pending.append((kwargs["on_delivery"], partition, topic))

    def poll(self, timeout: float) -> int:
        served, self.pending = self.pending, []
        for callback, partition, topic in served:
            callback(FailedDelivery() if topic in self.down else None, DeliveredMessage(partition))
        return len(served)


class FailedDelivery:
    def str(self) -> str:
        return "Broker: Not enough in-sync replicas"


def click(n: int, user: str = "u1", **fields: Any) -> dict[str, Any]:
    return {"event_id": f"c{n}", "user_id": user, "type": "view", "item_id": "sku-1", "ts": NOW, **fields}


def collect(body: dict[str, Any], producer: FakeProducer | None = None) -> tuple[int, dict[str, Any]]:
    collector = EventCollector(SETTINGS, producer or FakeProducer(), lambda: NOW)
    return collector.collect(read_batch(json.dumps(body).encode()))


def test_valid_events_are_written_keyed_by_user_on_the_murmur2_partition() -> None:
    producer = FakeProducer()
    order = {
        "event_id": "o1",
        "user_id": "u2",
        "order_id": "ord-1",
        "status": "placed",
        "items": [{"item_id": "sku-1", "quantity": 1}],
        "ts": NOW,
    }
    status, answer = collect({"clicks": [click(1), click(2, "u3")], "orders": [order]}, producer)
    assert status == 200
    assert (answer["accepted"], answer["refused"], answer["failed"]) == (3, 0, 0)
    assert answer["clicks"] == [
        {"status": "accepted", "event_id": "c1", "partition": partition_for("u1", 6)},
        {"status": "accepted", "event_id": "c2", "partition": partition_for("u3", 6)},
    ]
    assert answer["orders"][0]["event_id"] == "o1"
    topics = [(w["topic"], w["key"]) for w in producer.written]
    assert topics == [("t-clicks", b"u1"), ("t-clicks", b"u3"), ("t-orders", b"u2")]
    # msgpack, the canonical encoding, with the record timestamp the ts_in_future check used.
    assert decode_value(producer.written[0]["value"]) == click(1)
    assert producer.written[0]["timestamp"] == NOW


@pytest.mark.parametrize(
    ("event", "code", "field"),
    [
        ({"event_id": "x", "type": "view", "item_id": "a", "ts": NOW}, "missing_field", "data.user_id"),
        (click(1, type="teleport"), "unknown_value", "data.type"),
        (click(1, ts="yesterday"), "wrong_type", "data.ts"),
        (click(1, ts=NOW + 2 * 3600 * 1000), "ts_in_future", "ts"),
        (click(1, price=float("nan")), "bad_json", None),
        (click(1, user="u\ud800"), "bad_json", None),
        (click(1, user="u" * 129), "too_long", "data.user_id"),
        ([1, 2], "not_a_map", None),
        ("view sku-1", "not_a_map", None),
        ({"event_id": "x", "user_id": "u1", "type": "view", "ts": NOW}, "missing_field", "data.item_id"),
    ],
)
def test_a_hostile_event_is_refused_with_its_dead_letter_code(
    event: Any, code: str, field: str | None
) -> None:
    producer = FakeProducer()
    status, answer = collect({"clicks": [click(0), event, click(2)]}, producer)
    assert status == 200
    assert [a["status"] for a in answer["clicks"]] == ["accepted", "refused", "accepted"]
    refusal = answer["clicks"][1]
    assert refusal["code"] == code and refusal.get("field") == field, refusal
    # Nothing is lost: the refused event goes to dead-letters, the valid ones to clicks.
    letter = producer.written[1]
    assert letter["topic"] == "t-dead-letters"
    headers = dict(letter["headers"])
    assert headers[SOURCE_HEADER] == COLLECTOR_SOURCE
    assert headers["ce_type"].startswith(b"streams.dead_letter") and headers["ce_id"].startswith(b"d-")
    value = msgpack.unpackb(letter["value"], raw=False)
    assert value["error"]["code"] == code and value["source_topic"] == "t-clicks"
    assert [w["topic"] for w in producer.written] == ["t-clicks", "t-dead-letters", "t-clicks"]


def test_an_event_the_broker_does_not_acknowledge_is_failed_not_accepted() -> None:
    status, answer = collect({"clicks": [click(1)]}, FakeProducer(down=("t-clicks",)))
    assert status == 503
    assert answer["failed"] == 1 and answer["clicks"][0]["status"] == "failed"
    assert "Not enough in-sync replicas" in answer["clicks"][0]["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"clicks": [], "views": []}', "unknown keys .'views'."),
        (b'{"clicks": {"a": 1}}', "JSON arrays"),
        (json.dumps({"clicks": [click(n) for n in range(MAX_BATCH_EVENTS + 1)]}).encode(), "limit 500"),
    ],
)
def test_a_body_that_is_no_batch_is_refused_whole(body: bytes, message: str) -> None:
    with pytest.raises(BadBatch, match=message):
        read_batch(body)


def test_write_keys() -> None:
    keys = ("wk-shop", "wk-app")
    assert write_key_valid(keys, "Bearer wk-app")
    assert not write_key_valid(keys, "Bearer wk-ap")
    assert not write_key_valid(keys, "")
    assert not write_key_valid(keys, "Bearer ")
    assert not write_key_valid((), "Bearer wk-app")
