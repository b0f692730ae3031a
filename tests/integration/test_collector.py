"""`POST /events` on a real worker and broker: a batch of valid and hostile events gets an answer per
event, every accepted event lands once on the partition a Java client would choose, the refused ones
are in dead-letters, the worker processes what was accepted, and only a write key may post."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

from streams.codec import decode_value
from streams.config import Settings
from streams.web_access import WebAccess
from tests.integration.harness import get, read_topic, start_worker, wait_until

WRITE_KEY = "wk-storefront"
SHOP = "http://shop.example"
# Kafka's Java client (org.apache.kafka.common.utils.Utils.murmur2) on these keys, from its own
# unit tests: the partition a Java producer picks is (hash & 0x7fffffff) % partitions.
JAVA_MURMUR2 = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}


def post(url: str, body: bytes, key: str | None = WRITE_KEY, origin: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if origin is not None:
        headers["Origin"] = origin
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def preflight(url: str, origin: str) -> dict[str, str]:
    request = urllib.request.Request(
        url,
        method="OPTIONS",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(response.headers)
    except urllib.error.HTTPError as exc:
        return {"status": str(exc.code), **dict(exc.headers)}


def test_collector_writes_valid_events_where_java_would_and_refuses_hostile_ones(
    settings: Settings, tmp_path: Path
) -> None:
    settings = replace(
        settings, web_access=WebAccess(collector_keys=("wk-other", WRITE_KEY), cors_origins=(SHOP,))
    )
    now = int(time.time() * 1000)
    clicks: list[Any] = []
    for n, user in enumerate(JAVA_MURMUR2):
        for k in range(3):
            clicks.append(
                {
                    "event_id": f"col-{n}-{k}",
                    "user_id": user,
                    "type": "view",
                    "item_id": f"sku-{k}",
                    "ts": now + k,
                }
            )
    hostile = [
        ({"event_id": "h-1", "type": "view", "item_id": "sku-1", "ts": now}, "missing_field"),
        ({"event_id": "h-2", "user_id": "abc", "type": "teleport", "ts": now}, "unknown_value"),
        (
            {"event_id": "h-3", "user_id": "abc", "type": "view", "item_id": "sku-1", "ts": "now"},
            "wrong_type",
        ),
        (
            {"event_id": "h-4", "user_id": "abc", "type": "view", "item_id": "sku-1", "ts": now + 86_400_000},
            "ts_in_future",
        ),
        ("not an event", "not_a_map"),
        (
            {"event_id": "h-7", "user_id": "abc", "type": "view", "item_id": "s", "ts": now, "price": "NaN!"},
            "bad_json",
        ),
        ({"event_id": "h-6", "user_id": "x" * 200, "type": "view", "item_id": "s", "ts": now}, "too_long"),
    ]
    order = {
        "event_id": "col-order",
        "user_id": "foobar",
        "order_id": "ord-1",
        "status": "placed",
        "items": [{"item_id": "sku-1", "quantity": 1, "price": 10.0}],
        "ts": now + 10,
    }
    # Hostile events in between valid ones; NaN as JSON allows it in, refused per event.
    body = json.dumps({"clicks": clicks[:5] + [e for e, _ in hostile] + clicks[5:], "orders": [order]})
    body = body.replace('"NaN!"', "NaN")
    worker = start_worker(settings, tmp_path)
    try:
        worker.wait_ready()
        url = f"http://127.0.0.1:{settings.web_port}/events"
        assert post(url, body.encode(), key=None)[0] == 401
        assert post(url, body.encode(), key="wk-guess")[0] == 401
        assert post(url, b'{"views": []}')[0] == 400
        assert message_count_is_zero(settings)

        status, answer = post(url, body.encode(), origin=SHOP)
        assert status == 200, answer
        assert (answer["accepted"], answer["refused"], answer["failed"]) == (len(clicks) + 1, len(hostile), 0)
        by_id = {
            a.get("event_id"): a for a in answer["clicks"] + answer["orders"] if a["status"] == "accepted"
        }
        assert set(by_id) == {c["event_id"] for c in clicks} | {"col-order"}
        refusals = [a for a in answer["clicks"] if a["status"] == "refused"]
        assert [a["code"] for a in refusals] == [code for _, code in hostile]
        assert all(a["message"] for a in refusals)
        # The answer is in the batch's order.
        assert [a.get("event_id") for a in answer["clicks"][:5]] == [c["event_id"] for c in clicks[:5]]

        java = {user: (h & 0x7FFFFFFF) % settings.partitions for user, h in JAVA_MURMUR2.items()}
        events = {c["event_id"]: c for c in [*clicks, order]}
        for event_id, accepted in by_id.items():
            assert accepted["partition"] == java[events[event_id]["user_id"]], accepted

        # Every accepted event is on its topic exactly once, keyed by user_id, where Java would put it.
        written = [*read_topic(settings, "clicks"), *read_topic(settings, "orders")]
        seen = [(decode_value(m.value)["event_id"], m.key.decode(), m.partition) for m in written]
        assert sorted(seen) == sorted(
            (e["event_id"], e["user_id"], java[e["user_id"]]) for e in [*clicks, order]
        )
        letters = [decode_value(m.value) for m in read_topic(settings, "dead-letters")]
        assert sorted(letter["error"]["code"] for letter in letters) == sorted(code for _, code in hostile)

        # The worker processes what the collector wrote: each shopper's latest recommendation is
        # caused by its last event.
        def caught_up() -> bool:
            return all(
                get(f"http://127.0.0.1:{settings.web_port}/users/{user}/recommendations")[1].get(
                    "cause_event_id"
                )
                == f"col-{n}-2"
                for n, user in enumerate(JAVA_MURMUR2)
                if user != "foobar"
            )

        wait_until(caught_up, 120, "recommendations caused by the collected events")
        health = worker.health() or {}
        assert health["applied"] >= len(clicks) + 1, health

        # CORS: the shop's origin may post with its key; another origin gets no permission.
        allowed = preflight(url, SHOP)
        assert allowed.get("Access-Control-Allow-Origin") == SHOP, allowed
        assert "POST" in allowed.get("Access-Control-Allow-Methods", ""), allowed
        assert "Access-Control-Allow-Origin" not in preflight(url, "http://evil.example")
    finally:
        worker.stop()


def message_count_is_zero(settings: Settings) -> bool:
    """Refused requests wrote nothing."""
    return not read_topic(settings, "clicks") and not read_topic(settings, "dead-letters")
