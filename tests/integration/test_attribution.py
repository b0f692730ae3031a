"""Attribution through the real broker: generated shop traffic, then shoppers who are shown their
latest recommendation, click one of its items, and buy it (or not, or too late). The worker's
`GET /stats/recommendations`, its Prometheus counters and `streams attribution` on the same log all
give exactly the counts this test works out from what it made the shoppers do."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from streams.cli import _register, app
from streams.config import Settings
from streams.core.config import HOUR
from streams.generate import TrafficConfig, generate_traffic
from streams.logs import LogRecord, write_log
from streams.serving import DEFAULT_MODEL
from tests.integration.harness import (
    free_port,
    get,
    message_count,
    offline,
    produce,
    start_worker,
    wait_until,
)

TOKEN = "s3cret"
PLACEMENTS = ("home", "product_page", "cart")
MEASURES = ("impressions", "clicks", "add_to_carts", "orders", "revenue")


def click(user: str, n: int, ts: int, kind: str, **fields: Any) -> LogRecord:
    value = {"event_id": f"attr-{user}-{n}", "user_id": user, "type": kind, "ts": ts, **fields}
    return LogRecord("clicks", user, ts, value)


def order(user: str, n: int, ts: int, lines: list[tuple[str, int, float]], **fields: Any) -> LogRecord:
    items = [{"item_id": i, "quantity": q, "price": p} for i, q, p in lines]
    value = {
        "event_id": f"attr-{user}-{n}",
        "user_id": user,
        "order_id": f"attr-ord-{user}-{n}",
        "status": "placed",
        "items": items,
        "ts": ts,
        **fields,
    }
    return LogRecord("orders", user, ts, value)


def shop_log(settings: Settings) -> tuple[list[LogRecord], dict[tuple[str, str], list[float]]]:
    """Generated traffic plus, for shoppers whose last event was a click, a scripted ending on their
    latest recommendation; and the counts that ending must give, per (model version, placement)."""
    base = list(generate_traffic(TrafficConfig(users=80, items=400, events=2_500, seed=17)))
    recs = {
        o.value["cause_event_id"]: o.value
        for o in offline(base, settings).outputs
        if o.topic == "recommendations"
    }
    last: dict[str, LogRecord] = {}
    for record in base:
        if record.topic != "catalog" and record.key is not None:
            last[record.key] = record
    enders = sorted(
        u for u, r in last.items() if r.topic == "clicks" and r.value and r.value["event_id"] in recs
    )
    assert len(enders) >= 24, len(enders)
    expected: dict[tuple[str, str], list[float]] = {}
    extra: list[LogRecord] = []
    for n, user in enumerate(enders[:24]):
        rec = recs[last[user].value["event_id"]]  # type: ignore[index]
        version, rec_id = rec["model_version"], rec["rec_id"]
        shown = [i["item_id"] for i in rec["items"][:4]]
        placement, plan = PLACEMENTS[n % 3], ("buy", "browse", "late", "email")[n // 3 % 4]
        t = max(r.ts for r in base if r.key == user) + 1_000
        row = expected.setdefault((version, placement), [0, 0, 0, 0, 0.0])
        price = 10.0 + n
        if plan == "email":  # an order placed from a link carrying the recommendation's id: no clicks
            extra.append(order(user, 1, t, [(shown[0], 1, price)], rec_id=rec_id, placement=placement))
            row[3] += 1
            row[4] += price
            continue
        extra.append(click(user, 1, t, "impression", rec_id=rec_id, placement=placement, items=shown))
        extra.append(
            click(
                user, 2, t + 1_000, "view", item_id=shown[1], rec_id=rec_id, position=2, placement=placement
            )
        )
        row[0] += 1
        row[1] += 1
        if plan == "buy":
            extra.append(click(user, 3, t + 2_000, "add_to_cart", item_id=shown[1], price=price))
            extra.append(order(user, 4, t + 3_000, [(shown[1], 2, price), ("not-recommended", 1, 99.0)]))
            row[2] += 1
            row[3] += 1
            row[4] += 2 * price
        elif plan == "browse":  # the same list shown again in the same place: one impression
            extra.append(click(user, 3, t + 2_000, "impression", rec_id=rec_id, placement=placement))
        else:  # bought after the window: not attributed
            extra.append(order(user, 3, t + 1_000 + HOUR + 1, [(shown[1], 1, price)]))
    catalog = [r for r in base if r.topic == "catalog"]
    events = sorted((r for r in base + extra if r.topic != "catalog"), key=lambda r: r.ts)
    return catalog + events, expected


def window_rules(folder: Path) -> Path:
    """Rules with an attribution window of one hour: the scripted late orders fall outside it."""
    rules = folder / "rules.toml"
    rules.write_text(f"attribution_window_ms = {HOUR}\n", encoding="utf-8")
    return rules


def figures(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[float]]:
    return {(r["model_version"], r["placement"]): [round(r[m], 2) for m in MEASURES] for r in rows}


def test_live_and_offline_attribution_equal_the_counts_of_the_scripted_shoppers(
    bootstrap: str, settings: Settings, tmp_path: Path
) -> None:
    settings = replace(settings, api_token=TOKEN)
    rules = window_rules(tmp_path)
    records, expected = shop_log(settings)
    want = {key: [round(v, 2) for v in row] for key, row in expected.items()}
    assert {p for _, p in want} == set(PLACEMENTS) and all(row[3] for row in want.values())
    log = tmp_path / "shop.jsonl.gz"
    write_log(log, records)

    _register()
    args = ["attribution", str(log), "--model", str(DEFAULT_MODEL), "--rules", str(rules), "--json"]
    result = CliRunner().invoke(app, [*args, "--partitions", str(settings.partitions)])
    assert result.exit_code == 0, result.output
    offline_doc = json.loads(result.output)
    assert figures(offline_doc["rows"]) == want
    assert offline_doc["complete"] and offline_doc["attribution_window_ms"] == HOUR

    recommendations = sum(1 for o in offline(records, settings).outputs if o.topic == "recommendations")
    impressions = sum(1 for r in records if r.value and r.value.get("type") == "impression")
    assert recommendations == sum(1 for r in records if r.topic != "catalog") - impressions  # one per event
    worker = start_worker(settings, tmp_path, rules=rules)
    try:
        worker.wait_healthy()
        produce(records, settings)
        base = f"http://127.0.0.1:{settings.web_port}"
        assert get(f"{base}/stats/recommendations")[0] == 401
        wait_until(
            lambda: worker.assert_running() or message_count(settings, "recommendations") >= recommendations,
            300,
            f"{recommendations} recommendations (one per event but impressions)",
        )
        live: dict[str, Any] = {}

        def counted() -> bool:
            nonlocal live
            status, live = get(f"{base}/stats/recommendations", token=TOKEN)
            return status == 200 and figures(live["rows"]) == want

        try:
            wait_until(counted, 60, f"the attribution counts {want}")
        except TimeoutError as exc:
            raise AssertionError(f"{live}\n{worker.log_tail(30)}") from exc
        assert live["complete"] and live["partitions"] == list(range(settings.partitions))
        assert {
            k: v for k, v in live.items() if k not in ("partitions", "missing_partitions", "complete")
        } == {
            k: v for k, v in offline_doc.items() if k not in ("partitions", "missing_partitions", "complete")
        }
        metrics = worker.metrics()
        for (version, placement), row in want.items():
            labels = f'model_version="{version}",placement="{placement}"'
            assert f"streams_attributed_orders_total{{{labels}}} {float(row[3])}" in metrics
            assert f"streams_attributed_impressions_total{{{labels}}} {float(row[0])}" in metrics
    finally:
        worker.stop()


def test_each_of_two_workers_answers_for_the_whole_shop(settings: Settings, tmp_path: Path) -> None:
    settings = replace(settings, api_token=TOKEN)
    records, expected = shop_log(settings)
    want = {key: [round(v, 2) for v in row] for key, row in expected.items()}
    produce(records, settings)
    second = replace(settings, web_port=free_port(), data_dir=str(tmp_path / "second"))
    rules = window_rules(tmp_path)
    workers = [start_worker(settings, tmp_path, rules=rules), start_worker(second, tmp_path, rules=rules)]
    try:
        for w in workers:
            w.wait_healthy()
        events = sum(
            1 for r in records if r.topic != "catalog" and (r.value or {}).get("type") != "impression"
        )
        wait_until(lambda: message_count(settings, "recommendations") >= events, 300, "all recommendations")
        wait_until(
            lambda: all((w.health() or {}).get("partitions") for w in workers), 60, "a split assignment"
        )
        owned: list[set[str]] = []
        for w in workers:
            base = f"http://127.0.0.1:{w.settings.web_port}"
            answer: dict[str, Any] = {}

            def whole(base: str = base) -> bool:
                nonlocal answer
                status, answer = get(f"{base}/stats/recommendations", token=TOKEN)
                return status == 200 and answer["complete"] and figures(answer["rows"]) == want

            try:
                wait_until(whole, 60, f"the whole shop's counts from {base}")
            except TimeoutError as exc:
                raise AssertionError(f"{answer}\n{w.log_tail(30)}") from exc
            status, local = get(f"{base}/stats/recommendations?scope=local", token=TOKEN)
            assert status == 200
            owned.append(set(local["partitions"]))
        assert owned[0] and owned[1] and not owned[0] & owned[1]  # each answered the rest from the other
    finally:
        for w in workers:
            w.stop()
