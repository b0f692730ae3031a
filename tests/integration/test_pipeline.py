"""Recommendations and triggers through the broker equal the offline engine's, id for id."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from streams.codec import decode_value
from streams.config import Settings
from streams.core.config import MINUTE
from streams.importers import import_diginetica, import_otto
from streams.logs import LogRecord
from streams.partitioning import partition_for
from tests.integration.harness import offline, produce, read_topic, start_worker, wait_until

DATASETS = {
    "otto": lambda data: list(import_otto(data / "otto-fixture")),
    "diginetica": lambda data: list(import_diginetica(data / "diginetica-sample-events")),
}


def comparable(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k != "latency_ms"}


def out_of_stock_catalog(records: list[LogRecord], n: int = 5) -> list[LogRecord]:
    """Mark the most viewed items out of stock, so the filter has something to do."""
    counts: dict[str, int] = {}
    for r in records:
        if r.topic == "clicks" and r.value and r.value.get("item_id"):
            counts[r.value["item_id"]] = counts.get(r.value["item_id"], 0) + 1
    top = sorted(counts, key=lambda i: (-counts[i], i))[:n]
    return [
        LogRecord("catalog", item, 1, value={"item_id": item, "ts": 1, "in_stock": False}) for item in top
    ]


def wait_for_topic(
    settings: Settings, logical: str, count: int, worker: Any, timeout: float = 240
) -> list[Any]:
    messages: list[Any] = []

    def enough() -> bool:
        nonlocal messages
        worker.assert_running()
        messages = read_topic(settings, logical)
        return len(messages) >= count

    wait_until(enough, timeout, f"{count} messages on {logical}")
    return messages


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_one_recommendation_per_event_equal_to_the_offline_engine(
    dataset: str, shared_data: Path, settings: Settings, tmp_path: Path
) -> None:
    events = DATASETS[dataset](shared_data)
    catalog = out_of_stock_catalog(events)
    records = catalog + events
    expected = offline(records, settings)
    valid = expected.events - len(expected.dead_letters)
    expected_recs = {
        o.value["rec_id"]: comparable(o.value) for o in expected.outputs if o.topic == "recommendations"
    }
    assert len(expected_recs) == valid

    produce(records, settings)  # everything is on the broker before the worker starts: a backlog
    worker = start_worker(settings, tmp_path)
    try:
        recs = wait_for_topic(settings, "recommendations", valid, worker)
        got = [decode_value(m.value) for m in recs]
        assert len(got) == valid  # exactly one per valid input event
        assert {r["rec_id"] for r in got} == set(expected_recs)
        banned = {r.key for r in catalog}
        assert not any(i["item_id"] in banned for r in got for i in r["items"])
        bought = _purchases(events)
        for rec in got:
            earlier = {item for ts, item in bought.get(rec["user_id"], ()) if ts < rec["ts"]}
            assert not earlier & {i["item_id"] for i in rec["items"]}, rec["rec_id"]
        same = sum(comparable(r) == expected_recs[r["rec_id"]] for r in got)
        # The sequencer merges each partition's topics in event time, as the offline engine does:
        # content matches too (see docs/recommendations.md, Order, on when a partition's order can still
        # differ).
        assert same == valid, f"{valid - same} of {valid} recommendations differ from offline"
    finally:
        worker.stop()

    # A second worker group replaying the same topics from the start produces the very same ids.
    again = replace(
        settings,
        app_id=settings.app_id + "-again",
        data_dir=str(tmp_path / "again"),
        web_port=settings.web_port + 1,
    )
    second = start_worker(again, tmp_path)
    try:
        recs = wait_for_topic(settings, "recommendations", 2 * valid, second)
        ids = [decode_value(m.value)["rec_id"] for m in recs]
        assert sorted(ids) == sorted(list(expected_recs) * 2)
    finally:
        second.stop()


def _purchases(records: list[LogRecord]) -> dict[str, list[tuple[int, str]]]:
    out: dict[str, list[tuple[int, str]]] = {}
    for r in records:
        if r.topic == "orders" and r.value and r.value["status"] == "placed":
            out.setdefault(r.value["user_id"], []).extend(
                (r.value["ts"], i["item_id"]) for i in r.value["items"]
            )
    return out


def _clock_users(partitions: int) -> dict[int, str]:
    users: dict[int, str] = {}
    n = 0
    while len(users) < partitions:
        users.setdefault(partition_for(f"clock-{n}", partitions), f"clock-{n}")
        n += 1
    return users


def _click(user: str, n: int, ts: int, kind: str = "view", item: str = "sku-1", **extra: Any) -> LogRecord:
    value = {"event_id": f"{user}-{n}", "user_id": user, "type": kind, "item_id": item, "ts": ts, **extra}
    return LogRecord("clicks", user, ts, value=value)


def test_cart_abandonment_for_quiet_shoppers_only(settings: Settings, tmp_path: Path) -> None:
    t0 = 1_700_000_000_000
    records = [
        _click("quiet", 1, t0, "add_to_cart", quantity=2),
        _click("buyer", 1, t0, "add_to_cart"),
        LogRecord(
            "orders",
            "buyer",
            t0 + 5 * MINUTE,
            value={
                "event_id": "buyer-2",
                "user_id": "buyer",
                "order_id": "b1",
                "status": "placed",
                "items": [{"item_id": "sku-1", "quantity": 1}],
                "ts": t0 + 5 * MINUTE,
            },
        ),
        _click("private", 1, t0, "add_to_cart", marketing_consent=False),
        *[_click("bursty", n, t0 + n * 1000, "add_to_cart", item=f"sku-{n}") for n in range(40)],
    ]
    # Event time moves on for every partition through a clock shopper on it.
    for n, (_, user) in enumerate(sorted(_clock_users(settings.partitions).items())):
        records += [_click(user, n, t0 + 20 * MINUTE), _click(user, n + 100, t0 + 45 * MINUTE)]
    expected = offline(records, settings)
    cart = [
        o.value
        for o in expected.outputs
        if o.topic == "promotion-triggers" and o.value["kind"] == "cart_abandonment"
    ]
    assert sorted(t["user_id"] for t in cart) == ["bursty", "quiet"]

    produce(records, settings)
    worker = start_worker(settings, tmp_path)
    try:
        wait_for_topic(settings, "recommendations", len(records), worker)
        wait_until(lambda: len(read_topic(settings, "promotion-triggers")) >= len(cart), 60, "cart triggers")
        got = [decode_value(m.value) for m in read_topic(settings, "promotion-triggers")]
        got_cart = [t for t in got if t["kind"] == "cart_abandonment"]
        assert sorted(t["user_id"] for t in got_cart) == ["bursty", "quiet"]  # exactly one each
        quiet = next(t for t in got_cart if t["user_id"] == "quiet")
        assert quiet["items"] == [{"item_id": "sku-1", "quantity": 2}]
        assert quiet["ts"] == t0 + 30 * MINUTE
        assert sorted(t["trigger_id"] for t in got) == sorted(
            o.value["trigger_id"] for o in expected.outputs if o.topic == "promotion-triggers"
        )
    finally:
        worker.stop()


def test_price_drop_and_restock_reach_the_shopper_who_saw_the_item(
    settings: Settings, tmp_path: Path
) -> None:
    t0 = int(time.time() * 1000)
    before = LogRecord(
        "catalog", "sku-7", t0, value={"item_id": "sku-7", "ts": t0, "price": 100.0, "in_stock": False}
    )
    produce([before, _click("watcher", 1, t0 + 1, item="sku-7")], settings)
    worker = start_worker(settings, tmp_path)
    try:
        wait_for_topic(settings, "recommendations", 1, worker)
        after = LogRecord(
            "catalog",
            "sku-7",
            t0 + 2,
            value={"item_id": "sku-7", "ts": t0 + 2, "price": 80.0, "in_stock": True},
        )
        produce([after], settings)
        triggers = wait_for_topic(settings, "promotion-triggers", 2, worker, timeout=60)
        kinds = sorted(decode_value(m.value)["kind"] for m in triggers)
        assert kinds == ["back_in_stock", "price_drop"]
        assert all(decode_value(m.value)["user_id"] == "watcher" for m in triggers)
    finally:
        worker.stop()


def test_a_quiet_cart_is_caught_on_the_wall_clock(settings: Settings, tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("cart_timeout_ms = 3000\nenabled_triggers = ['cart_abandonment']\n")
    t0 = int(time.time() * 1000)
    produce([_click("quiet", 1, t0, "add_to_cart")], settings)
    worker = start_worker(settings, tmp_path, tick_seconds=1.0, rules=rules)
    try:
        [message] = wait_for_topic(settings, "promotion-triggers", 1, worker, timeout=60)
        trigger = decode_value(message.value)
        assert (trigger["user_id"], trigger["kind"], trigger["ts"]) == (
            "quiet",
            "cart_abandonment",
            t0 + 3000,
        )
    finally:
        worker.stop()
