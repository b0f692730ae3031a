from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from streams.deliver.formats import (
    SEGMENTS,
    TRIGGERS,
    Klaviyo,
    Output,
    Segment,
    Webhook,
    iso_time,
    webhook_key,
)

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def trigger(**changes: Any) -> dict[str, Any]:
    value = {
        "schema_version": 1,
        "trigger_id": "t-1",
        "user_id": "u-42",
        "kind": "cart_abandonment",
        "items": [{"item_id": "sku-1", "quantity": 2, "price": 9.5}],
        "reason": "1 item(s) in cart, no activity for 30 min",
        "ts": 1700001800000,
        "expires_at": 1700088200000,
        "replay": False,
    }
    return {**value, **changes}


ENRICHED_ITEM = {
    "item_id": "sku-1",
    "quantity": 2,
    "price": 9.5,
    "title": "Blue mug",
    "category": "kitchen",
    "image_url": "https://shop.example/i/sku-1.jpg",
    "url": "https://shop.example/p/sku-1",
}
SEGMENT_CHANGE = {
    "event_id": "s-9",
    "user_id": "u-42",
    "segment": "cart_over_100",
    "action": "enter",
    "ts": 1700000060000,
    "reason": "cart_value > 100",
    "replay": False,
    "cause_event_id": "e-981",
}


def test_iso_time_is_utc_with_milliseconds() -> None:
    assert iso_time(1700001800123) == "2023-11-14T22:43:20.123Z"


def test_a_webhook_is_signed_as_standard_webhooks_verifies_it() -> None:
    webhook = Webhook(SECRET)
    [request] = webhook.requests([Output(TRIGGERS, trigger())])
    headers = webhook.headers(request, now=1700000000.7)
    assert headers["webhook-id"] == "t-1"
    assert headers["webhook-timestamp"] == "1700000000"
    signed = b"t-1.1700000000." + request.body
    expected = hmac.new(b"0123456789abcdef0123456789abcdef", signed, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(expected).decode()
    body = json.loads(request.body)
    assert body["type"] == "promotion_trigger.cart_abandonment"
    assert body["timestamp"] == "2023-11-14T22:43:20.000Z"
    assert body["data"] == trigger()


def test_a_changed_body_or_key_no_longer_verifies() -> None:
    webhook = Webhook(SECRET)
    [request] = webhook.requests([Output(TRIGGERS, trigger())])
    signature = webhook.headers(request, now=1)["webhook-signature"]
    assert (
        Webhook("whsec_" + base64.b64encode(b"another").decode()).headers(request, now=1)["webhook-signature"]
        != signature
    )
    [other] = webhook.requests([Output(TRIGGERS, trigger(reason="changed"))])
    assert webhook.headers(other, now=1)["webhook-signature"] != signature


def test_a_secret_without_the_prefix_is_used_as_raw_bytes() -> None:
    assert webhook_key("plain-text") == b"plain-text"


def test_webhooks_send_one_output_per_request_and_name_segment_changes() -> None:
    batch = [Output(TRIGGERS, trigger()), Output(SEGMENTS, SEGMENT_CHANGE)]
    requests = Webhook(SECRET).requests(batch)
    assert [r.carries for r in requests] == [(0,), (1,)]
    assert [r.key for r in requests] == ["t-1", "s-9"]
    assert json.loads(requests[1].body)["type"] == "audience_segment.enter"


def test_klaviyo_event_carries_the_trigger_id_time_value_and_items() -> None:
    value = trigger(
        items=[ENRICHED_ITEM], value=19.0, currency="EUR", link="https://shop.example/cart?u=u-42"
    )
    klaviyo = Klaviyo("pk_secret")
    [request] = klaviyo.requests([Output(TRIGGERS, value)])
    attributes = json.loads(request.body)["data"]["attributes"]
    assert attributes["unique_id"] == "t-1"
    assert attributes["time"] == "2023-11-14T22:43:20.000Z"
    assert attributes["value"] == 19.0
    assert attributes["value_currency"] == "EUR"
    assert attributes["metric"]["data"]["attributes"]["name"] == "cart_abandonment"
    assert attributes["profile"]["data"]["attributes"]["external_id"] == "u-42"
    properties = attributes["properties"]
    assert properties["Items"] == [
        {
            "ProductID": "sku-1",
            "ProductName": "Blue mug",
            "Quantity": 2,
            "ItemPrice": 9.5,
            "ImageURL": "https://shop.example/i/sku-1.jpg",
            "ProductURL": "https://shop.example/p/sku-1",
            "ProductCategories": ["kitchen"],
        }
    ]
    assert properties["ItemNames"] == ["Blue mug"]
    assert properties["link"] == "https://shop.example/cart?u=u-42"
    assert "backfill" not in properties
    headers = klaviyo.headers(request, now=0)
    assert headers["authorization"] == "Klaviyo-API-Key pk_secret"
    assert headers["revision"]


def test_klaviyo_omits_what_a_plain_trigger_does_not_carry_and_marks_a_backfill() -> None:
    [request] = Klaviyo("k").requests([Output(TRIGGERS, trigger(replay=True))])
    attributes = json.loads(request.body)["data"]["attributes"]
    assert "value" not in attributes and "value_currency" not in attributes
    assert attributes["properties"]["Items"] == [{"ProductID": "sku-1", "Quantity": 2, "ItemPrice": 9.5}]
    assert "ItemNames" not in attributes["properties"]
    assert attributes["properties"]["backfill"] is True


def test_segment_sends_the_whole_batch_as_track_calls_keyed_by_output_id() -> None:
    batch = [
        Output(TRIGGERS, trigger(items=[ENRICHED_ITEM], value=19.0, currency="EUR")),
        Output(TRIGGERS, trigger(trigger_id="t-2", kind="browse_abandonment", items=[{"item_id": "sku-2"}])),
        Output(SEGMENTS, SEGMENT_CHANGE),
    ]
    segment = Segment("wk")
    [request] = segment.requests(batch)
    assert request.carries == (0, 1, 2)
    calls = json.loads(request.body)["batch"]
    assert [c["messageId"] for c in calls] == ["t-1", "t-2", "s-9"]
    assert [c["event"] for c in calls] == ["cart_abandonment", "browse_abandonment", "segment_enter"]
    assert {c["type"] for c in calls} == {"track"}
    assert calls[0]["userId"] == "u-42"
    assert calls[0]["timestamp"] == "2023-11-14T22:43:20.000Z"
    assert calls[0]["properties"]["products"] == [
        {
            "product_id": "sku-1",
            "name": "Blue mug",
            "category": "kitchen",
            "price": 9.5,
            "quantity": 2,
            "image_url": "https://shop.example/i/sku-1.jpg",
            "url": "https://shop.example/p/sku-1",
        }
    ]
    assert (calls[0]["properties"]["value"], calls[0]["properties"]["currency"]) == (19.0, "EUR")
    assert calls[1]["properties"]["products"] == [{"product_id": "sku-2"}]
    assert "value" not in calls[1]["properties"]
    assert calls[2]["properties"]["segment"] == "cart_over_100"
    assert segment.headers(request, now=0)["authorization"] == "Basic " + base64.b64encode(b"wk:").decode()


def test_the_same_outputs_give_the_same_bodies() -> None:
    batch = [Output(TRIGGERS, trigger(items=[ENRICHED_ITEM])), Output(SEGMENTS, SEGMENT_CHANGE)]
    for format in (Webhook(SECRET), Klaviyo("k"), Segment("k")):
        assert [r.body for r in format.requests(batch)] == [r.body for r in format.requests(list(batch))]
