"""Item lists and request-time recommendations through the real broker, with two workers sharing the
input partitions: whole-shop trending and bought-together gather every partition, whichever worker is
asked; a shopper's list with parameters is computed where the shopper lives, as the core computes it
offline from the same log."""

from __future__ import annotations

import math
import urllib.parse
from pathlib import Path
from typing import Any

from streams.config import Settings
from streams.core.catalog import CatalogItem
from streams.core.config import RulesConfig
from streams.core.listing import parse_query
from streams.core.on_request import recommend_now
from streams.core.trending import WEIGHTS
from streams.generate import TrafficConfig, generate_traffic
from streams.logs import LogRecord
from streams.partitioning import partition_for
from tests.integration.harness import (
    WorkerProcess,
    get,
    offline,
    recommender,
    two_workers_after,
    wait_until,
)

REASONS = {"model", "repeat", "trending", "boosted_category", "because_you_viewed"}


def placed(n: int, user: str, ts: int, *items: str) -> LogRecord:
    lines = [{"item_id": i, "quantity": 1, "price": 10.0} for i in items]
    value = {
        "event_id": f"bt-{n}",
        "user_id": user,
        "order_id": f"bt-o{n}",
        "status": "placed",
        "items": lines,
        "ts": ts,
    }
    return LogRecord("orders", user, ts, value=value)


def expected_trending(records: list[LogRecord], half_life_ms: int) -> dict[str, float]:
    """Every counted click's weight decayed to the latest counted click, summed per item: computed
    from the log alone, without the core."""
    counted = [
        r.value
        for r in records
        if r.topic == "clicks" and r.value.get("item_id") and r.value["type"] in WEIGHTS
    ]
    now = max(v["ts"] for v in counted)
    totals: dict[str, float] = {}
    for v in counted:
        totals[v["item_id"]] = totals.get(v["item_id"], 0.0) + WEIGHTS[v["type"]] * math.exp2(
            (v["ts"] - now) / half_life_ms
        )
    return totals


def trending_matches(body: dict[str, Any], expected: dict[str, float], n: int) -> bool:
    if body.get("partitions") != body.get("of") or len(body.get("items", ())) != n:
        return False
    best = sorted(expected.values(), reverse=True)[:n]
    got = [i["score"] for i in body["items"]]
    return all(
        math.isclose(i["score"], expected[i["item_id"]], rel_tol=1e-6, abs_tol=1e-6) for i in body["items"]
    ) and all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6) for a, b in zip(got, best, strict=True))


def url(worker: WorkerProcess, path: str, **params: Any) -> str:
    query = urllib.parse.urlencode(params)
    return f"http://127.0.0.1:{worker.settings.web_port}{path}" + (f"?{query}" if query else "")


def test_item_lists_and_request_time_recommendations_with_two_workers(
    settings: Settings, tmp_path: Path
) -> None:
    records = list(generate_traffic(TrafficConfig(users=60, items=200, events=2000, seed=21)))
    ordered = {line["item_id"] for r in records if r.topic == "orders" for line in r.value["items"]}
    a, b, c, d, e = [f"sku-{n}" for n in range(200) if f"sku-{n}" not in ordered][:5]
    end = max(r.ts for r in records)
    records += [
        placed(1, "bt-u1", end + 1, a, b, c),
        placed(2, "bt-u2", end + 2, b, a),
        placed(3, "bt-u3", end + 3, a),
        placed(4, "bt-u3", end + 4, d),  # bought a week apart or less: together with `a`
    ]
    workers = two_workers_after(records, settings, tmp_path)
    try:
        partitions = {p for w in workers for p in w.health()["partitions"]}
        assert partitions == set(range(settings.partitions))
        _trending(workers, records)
        _bought_together(workers, a, b, c, d, e)
        _similar(workers, records, a)
        _recommendations(workers, records, settings)
    finally:
        for w in workers:
            w.stop()


def _trending(workers: list[WorkerProcess], records: list[LogRecord]) -> None:
    expected = expected_trending(records, RulesConfig().trending_half_life_ms)
    for w in workers:
        wait_until(
            lambda w=w: trending_matches(get(url(w, "/items/trending", n=20))[1], expected, 20),
            60,
            f"whole-shop trending from the worker on {w.settings.web_port}",
        )
        status, body = get(url(w, "/items/trending", n=20, placement="home"))
        assert status == 200 and body["list"] == "trending" and body["placement"] == "home"
        assert body["partitions"] == body["of"] == 4
        assert {i["reason"] for i in body["items"]} == {"trending"}
    first = get(url(workers[0], "/items/trending", n=20))[1]
    assert get(url(workers[1], "/items/trending", n=20))[1] == first  # one answer, whoever is asked
    # Filters, n and fields on the same whole-shop counts.
    top = first["items"][0]["item_id"]
    status, body = get(
        url(workers[1], "/items/trending", n=3, exclude=top, fields="category,in_stock", in_stock="true")
    )
    assert status == 200 and len(body["items"]) == 3
    assert all(i["item_id"] != top and i["in_stock"] is True and "category" in i for i in body["items"])
    assert get(url(workers[0], "/items/trending", n=101))[0] == 400
    assert get(url(workers[0], "/items/trending", sort="price"))[0] == 400


def _bought_together(workers: list[WorkerProcess], a: str, b: str, c: str, d: str, never: str) -> None:
    """`never`: in the catalog, never ordered."""
    for w in workers:
        status, body = get(url(w, f"/items/{a}/bought-together", fields="title"))
        assert status == 200, body
        assert [(i["item_id"], i["count"], i["reason"]) for i in body["items"]] == [
            (b, 2, "bought_together"),
            (c, 1, "bought_together"),
            (d, 1, "bought_together"),
        ]
        assert all(i["title"] for i in body["items"]) and body["partitions"] == body["of"]
        assert [i["item_id"] for i in get(url(w, f"/items/{a}/bought-together", n=1))[1]["items"]] == [b]
        assert [i["item_id"] for i in get(url(w, f"/items/{a}/bought-together", exclude=b))[1]["items"]] == [
            c,
            d,
        ]
        assert [i["item_id"] for i in get(url(w, f"/items/{d}/bought-together"))[1]["items"]] == [a]
        assert get(url(w, f"/items/{never}/bought-together")) == (
            200,
            {
                "item_id": never,
                "list": "bought_together",
                "placement": None,
                "items": [],
                "partitions": 4,
                "of": 4,
            },
        )
        status, body = get(url(w, "/items/no-such-item/bought-together"))
        assert status == 404 and body["error"] == "unknown item"
        assert get(url(w, f"/items/{a}/bought-together", min_price="x"))[0] == 400


def _similar(workers: list[WorkerProcess], records: list[LogRecord], item: str) -> None:
    for w in workers:
        status, body = get(url(w, f"/items/{item}/similar", n=5, fields="title,category,price"))
        assert status == 200 and body["item_id"] == item and len(body["items"]) == 5
        assert all(i["reason"] == "similar" and "title" in i and "category" in i for i in body["items"])
        assert item not in [i["item_id"] for i in body["items"]]
        # The shipped model knows 2,000 items; this shop's catalog, the first 200 of them.
        category = next(r.value["category"] for r in records if r.topic == "catalog" and r.key == item)
        status, body = get(
            url(w, f"/items/{item}/similar", n=4, category=category, max_price=1000, fields="category,price")
        )
        assert status == 200 and len(body["items"]) == 4
        assert all(i["category"] == category and i["price"] <= 1000 for i in body["items"])
        assert get(url(w, "/items/no-such-item/similar"))[0] == 404
        status, body = get(url(w, f"/items/{item}/similar", fields="colour"))
        assert status == 400 and "unknown field(s): colour" in body["error"]


def _recommendations(workers: list[WorkerProcess], records: list[LogRecord], settings: Settings) -> None:
    # What the core computes from the same log offline: the states and partition counts the live
    # worker holds, so the same answer to the same question.
    result = offline(records, settings)
    model = recommender()
    space = model.item_space() if hasattr(model, "item_space") else None
    catalog = {r.key: CatalogItem.from_dict(r.value) for r in records if r.topic == "catalog"}
    users = sorted(u for u in result.states if not u.startswith("bt-"))[:8]
    params = {"n": 15, "fields": "title,price,category,in_stock", "placement": "home"}
    for user in users:
        state = result.states[user]
        trending = result.partitions[partition_for(user, settings.partitions)].trending
        query = parse_query([(k, str(v)) for k, v in params.items()])
        want = recommend_now(state, model, trending, catalog, RulesConfig(), query, space)
        answers = [get(url(w, f"/users/{user}/recommendations", **params)) for w in workers]
        for status, body in answers:  # one of the two answers was forwarded to the owner
            assert status == 200, body
            assert body["rec_id"] == want.rec_id and body["items"] == want.items
            assert body["placement"] == "home" and body["user_id"] == user
            assert len(body["items"]) == 15 and {i["reason"] for i in body["items"]} <= REASONS
            assert all({"title", "price", "category", "in_stock"} <= set(i) for i in body["items"])
    user = users[0]
    w = workers[0]
    body = get(url(w, f"/users/{user}/recommendations", n=40, fields="category"))[1]
    # The first item this shop's catalog knows (the shipped model knows ten times as many).
    first, category = next((i["item_id"], i["category"]) for i in body["items"] if i["category"])
    filtered = get(
        url(w, f"/users/{user}/recommendations", n=5, category=category, exclude=first, fields="category")
    )[1]
    assert filtered["items"] and all(
        i["category"] == category and i["item_id"] != first for i in filtered["items"]
    )
    cheap = get(
        url(w, f"/users/{user}/recommendations", max_price=20, in_stock="true", fields="price,in_stock")
    )[1]
    assert cheap["items"] and all(i["price"] <= 20 and i["in_stock"] is True for i in cheap["items"])
    assert len(get(url(w, f"/users/{user}/recommendations", n=3))[1]["items"]) == 3
    # Without parameters: the latest recommendation the stream sent, as before.
    assert "cause_event_id" in get(url(w, f"/users/{user}/recommendations"))[1]
    for bad in (
        {"n": 0},
        {"n": "many"},
        {"colour": "red"},
        {"min_price": 5, "max_price": 1},
        {"in_stock": "maybe"},
    ):
        status, body = get(url(w, f"/users/{user}/recommendations", **bad))
        assert status == 400 and body["error"], bad
    assert get(url(w, "/users/nobody/recommendations", n=5))[0] == 404
