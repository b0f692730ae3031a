"""A batch of outputs as the receiver's HTTP requests: Standard Webhooks, Klaviyo, Segment.

Pure mappings (docs/delivery.md has each field table). Every request carries the outputs' own
deterministic ids as the receiver's idempotency key (`webhook-id`, Klaviyo's `unique_id`, Segment's
`messageId`), so a batch sent again after a crash or a retry is recognised whatever else it holds.
Only the webhook signature depends on the moment of sending: `headers` is called for each attempt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

TRIGGERS, SEGMENTS = "promotion-triggers", "audience-segments"
KLAVIYO_REVISION = "2024-10-15"
WEBHOOK_SECRET_PREFIX = "whsec_"


@dataclass(frozen=True, slots=True)
class Output:
    """One decoded output of the worker: `source` is its logical topic."""

    source: str
    value: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.value["trigger_id" if self.source == TRIGGERS else "event_id"])

    @property
    def user_id(self) -> str:
        return str(self.value["user_id"])

    @property
    def replay(self) -> bool:
        return bool(self.value.get("replay"))

    @property
    def name(self) -> str:
        """The event name the receiver files it under: the trigger kind, or `segment_enter|exit`."""
        if self.source == TRIGGERS:
            return str(self.value["kind"])
        return f"segment_{self.value['action']}"


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP POST: its body, the headers that do not depend on the moment, and which outputs of
    the batch (by index) it carries."""

    body: bytes
    headers: Mapping[str, str]
    carries: tuple[int, ...]
    key: str  # the idempotency key, for logs and dead letters


class Format(Protocol):
    name: str

    def requests(self, batch: Sequence[Output]) -> list[Request]: ...

    def headers(self, request: Request, now: float) -> dict[str, str]:
        """All headers of one attempt at `now` (epoch seconds)."""
        ...


def iso_time(ts_ms: int) -> str:
    """Epoch milliseconds as ISO 8601 in UTC with a `Z`, as all three receivers accept."""
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_body(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")


def _renamed(item: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """`item`'s fields under the receiver's names; a field the trigger does not carry is left out."""
    out: dict[str, Any] = {}
    for ours, theirs in names.items():
        value = item.get(ours)
        if value is None and ours == "image_url":
            value = item.get("image")
        if value is not None:
            out[theirs] = value
    return out


def _properties(output: Output, trigger_fields: Mapping[str, Any]) -> dict[str, Any]:
    """The event properties of Klaviyo and Segment: a trigger's own fields under the receiver's
    names, or the segment and action; then the cause, and `backfill` for a replayed output."""
    value = output.value
    properties: dict[str, Any] = {"reason": value.get("reason", "")}
    if output.source == TRIGGERS:
        properties.update(trigger_fields)
    else:
        properties.update({"segment": value["segment"], "action": value["action"]})
    if value.get("cause_event_id") is not None:
        properties["cause_event_id"] = value["cause_event_id"]
    if output.replay:
        properties["backfill"] = True
    return properties


# -- Standard Webhooks ------------------------------------------------------------------------------


def webhook_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: base64 after `whsec_`, else the text's bytes."""
    if secret.startswith(WEBHOOK_SECRET_PREFIX):
        return base64.b64decode(secret[len(WEBHOOK_SECRET_PREFIX) :])
    return secret.encode("utf-8")


def webhook_signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class Webhook:
    """One output per request: the body is `{type, timestamp, data}` with the output itself as
    `data`; `webhook-id` is its id and `webhook-signature` an HMAC-SHA256 of id, time and body."""

    name = "webhook"

    def __init__(self, secret: str) -> None:
        self._key = webhook_key(secret)

    def requests(self, batch: Sequence[Output]) -> list[Request]:
        out = []
        for index, output in enumerate(batch):
            kind = "promotion_trigger" if output.source == TRIGGERS else "audience_segment"
            event_type = (
                f"{kind}.{output.value['kind'] if output.source == TRIGGERS else output.value['action']}"
            )
            body = json_body(
                {"type": event_type, "timestamp": iso_time(output.value["ts"]), "data": output.value}
            )
            out.append(Request(body, {"content-type": "application/json"}, (index,), output.id))
        return out

    def headers(self, request: Request, now: float) -> dict[str, str]:
        timestamp = int(now)
        return {
            **request.headers,
            "webhook-id": request.key,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": webhook_signature(self._key, request.key, timestamp, request.body),
        }


# -- Klaviyo ----------------------------------------------------------------------------------------

KLAVIYO_ITEM = {
    "item_id": "ProductID",
    "title": "ProductName",
    "quantity": "Quantity",
    "price": "ItemPrice",
    "image_url": "ImageURL",
    "url": "ProductURL",
}


def klaviyo_event(output: Output) -> dict[str, Any]:
    """The Events API's create-event body (JSON:API) of one output."""
    value = output.value
    items = []
    for item in value.get("items", ()):
        mapped = _renamed(item, KLAVIYO_ITEM)
        if item.get("category") is not None:
            mapped["ProductCategories"] = [item["category"]]
        items.append(mapped)
    trigger_fields: dict[str, Any] = {"Items": items}
    names = [item["title"] for item in value.get("items", ()) if item.get("title") is not None]
    if names:
        trigger_fields["ItemNames"] = names
    trigger_fields.update(_renamed(value, {"link": "link", "expires_at": "expires_at"}))
    properties = _properties(output, trigger_fields)
    attributes: dict[str, Any] = {
        "metric": {"data": {"type": "metric", "attributes": {"name": output.name}}},
        "profile": {"data": {"type": "profile", "attributes": {"external_id": output.user_id}}},
        "properties": properties,
        "time": iso_time(value["ts"]),
        "unique_id": output.id,
    }
    if value.get("value") is not None:
        attributes["value"] = value["value"]
        if value.get("currency") is not None:
            attributes["value_currency"] = value["currency"]
    return {"data": {"type": "event", "attributes": attributes}}


class Klaviyo:
    """One output per request to the Events API (`POST https://a.klaviyo.com/api/events`)."""

    name = "klaviyo"

    def __init__(self, api_key: str) -> None:
        self._authorization = f"Klaviyo-API-Key {api_key}"

    def requests(self, batch: Sequence[Output]) -> list[Request]:
        headers = {
            "content-type": "application/vnd.api+json",
            "accept": "application/vnd.api+json",
            "revision": KLAVIYO_REVISION,
        }
        return [
            Request(json_body(klaviyo_event(output)), headers, (index,), output.id)
            for index, output in enumerate(batch)
        ]

    def headers(self, request: Request, now: float) -> dict[str, str]:
        return {**request.headers, "authorization": self._authorization}


# -- Segment ----------------------------------------------------------------------------------------

SEGMENT_PRODUCT = {
    "item_id": "product_id",
    "title": "name",
    "category": "category",
    "price": "price",
    "quantity": "quantity",
    "image_url": "image_url",
    "url": "url",
}


def segment_track(output: Output) -> dict[str, Any]:
    """A `track` call of one output, with products named as in Segment's e-commerce spec."""
    value = output.value
    trigger_fields = {"products": [_renamed(item, SEGMENT_PRODUCT) for item in value.get("items", ())]}
    renamed = {"value": "value", "currency": "currency", "link": "link", "expires_at": "expires_at"}
    properties = _properties(output, {**trigger_fields, **_renamed(value, renamed)})
    return {
        "type": "track",
        "messageId": output.id,
        "userId": output.user_id,
        "event": output.name,
        "timestamp": iso_time(value["ts"]),
        "properties": properties,
        "context": {"library": {"name": "streams-deliver"}},
    }


class Segment:
    """The whole batch in one request to the batch API (`POST https://api.segment.io/v1/batch`)."""

    name = "segment"

    def __init__(self, write_key: str) -> None:
        token = base64.b64encode(f"{write_key}:".encode()).decode()
        self._authorization = f"Basic {token}"

    def requests(self, batch: Sequence[Output]) -> list[Request]:
        if not batch:
            return []
        body = json_body({"batch": [segment_track(output) for output in batch]})
        key = batch[0].id if len(batch) == 1 else f"{batch[0].id}..{batch[-1].id}"
        return [Request(body, {"content-type": "application/json"}, tuple(range(len(batch))), key)]

    def headers(self, request: Request, now: float) -> dict[str, str]:
        return {**request.headers, "authorization": self._authorization}


def make_format(name: str, secret: str | None, api_key: str | None) -> Format:
    if name == "webhook":
        assert secret is not None, "DeliverConfig requires a secret for webhooks"
        return Webhook(secret)
    assert api_key is not None, f"DeliverConfig requires an API key for {name}"
    return Klaviyo(api_key) if name == "klaviyo" else Segment(api_key)
