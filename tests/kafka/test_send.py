from __future__ import annotations

import json

import pytest

from streams.errors import BadMessage
from streams.kafka.send import event_record

NOW = 1_700_000_000_000


def test_a_click_gets_an_id_and_the_time_and_is_keyed_by_its_user() -> None:
    record = event_record("clicks", '{"user_id": "u1", "type": "view", "item_id": "sku-1"}', NOW)
    assert (record.topic, record.key, record.ts) == ("clicks", "u1", NOW)
    assert record.value is not None
    assert record.value["ts"] == NOW and record.value["event_id"].startswith("cli-")
    given = event_record("clicks", json.dumps({**record.value, "event_id": "e1", "ts": NOW - 5}), NOW)
    assert given.value is not None and (given.value["event_id"], given.value["ts"]) == ("e1", NOW - 5)


def test_a_catalog_item_is_keyed_by_its_item() -> None:
    record = event_record("catalog", '{"item_id": "sku-9", "price": 12.5, "in_stock": true}', NOW)
    assert record.key == "sku-9" and record.value is not None and "event_id" not in record.value


@pytest.mark.parametrize(
    ("topic", "text", "error"),
    [
        ("clicks", '{"user_id": "u1", "type": "teleport"}', BadMessage),
        ("clicks", '{"type": "view"}', BadMessage),
        ("clicks", "[1, 2]", ValueError),
        ("clicks", "{not json", ValueError),
        ("recommendations", '{"user_id": "u1"}', ValueError),
    ],
)
def test_what_the_worker_would_dead_letter_is_refused_here_with_the_reason(
    topic: str, text: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        event_record(topic, text, NOW)


def test_unvalidated_events_are_sent_as_given() -> None:
    record = event_record("clicks", '{"user_id": "u1", "type": "teleport"}', NOW, validate=False)
    assert record.value == {"user_id": "u1", "type": "teleport"} and record.key == "u1"
