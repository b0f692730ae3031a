"""`streams predict --intent`: each shopper's intent after their last event, as the worker serves it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli import _register, app
from streams.generate import TrafficConfig, generate_traffic
from streams.logs import LogRecord, write_log
from streams.model.intent import read_shopper_histories, shopper_histories, streamed_intents
from streams.model.runtime import OnnxRecommender
from streams.offline.replay import Variant, run_offline
from streams.serving import DEFAULT_MODEL


def _click(
    event_id: str, user: str, ts: int, item: str | None, kind: str = "view", **extra: object
) -> LogRecord:
    value = {"event_id": event_id, "user_id": user, "type": kind, "ts": ts, **extra}
    if item is not None:
        value["item_id"] = item
    return LogRecord("clicks", user, ts, value)


def _order(event_id: str, user: str, ts: int, items: list[str], status: str = "placed") -> LogRecord:
    lines = [{"item_id": item, "quantity": 1} for item in items]
    value = {
        "event_id": event_id,
        "user_id": user,
        "order_id": f"o-{event_id}",
        "status": status,
        "items": lines,
    }
    return LogRecord("orders", user, ts, {**value, "ts": ts})


def test_histories_are_what_the_worker_keeps() -> None:
    records = [
        _order("o1", "u1", 2_000, ["b", "c"]),  # arrives first, but a click at the same ts goes first
        _click("c1", "u1", 1_000, "a"),
        _click("c2", "u1", 2_000, "b"),
        _click("c3", "u2", 1_500, None, kind="search", query="shoes"),
        _click("c4", "u1", 3_000, None, kind="impression", rec_id="r-1", items=["x"]),  # not an action
        LogRecord("clicks", "u1", 3_500, {"event_id": "bad", "user_id": "u1", "type": "view", "ts": 3_500}),
        LogRecord("clicks", "u2", 3_600, value_bytes=b"\xc1"),
        _order("o2", "u1", 4_000, ["c"], status="cancelled"),
        LogRecord("catalog", "a", 10, {"item_id": "a"}),
    ]
    shoppers = shopper_histories(records)
    assert shoppers.histories == {
        "u1": [
            ("a", "view", 1_000),
            ("b", "view", 2_000),
            ("b", "order_placed", 2_000),
            ("c", "order_cancelled", 4_000),
        ],
        "u2": [(None, "search", 1_500)],
    }
    assert shoppers.skipped == 2  # a view without item_id, and bytes that are no event


def test_cli_intent_matches_the_intent_the_pipeline_serves(tmp_path: Path) -> None:
    """The offline replay runs the worker's core (processor, model state carried event to event);
    the intent of each shopper's last recommendation there is what `predict --intent` must print."""
    records = list(generate_traffic(TrafficConfig(users=40, items=300, events=1_500, seed=11)))
    log = tmp_path / "log.jsonl"
    write_log(log, records)
    _register()
    out = tmp_path / "intent.tsv"
    result = CliRunner().invoke(
        app, ["predict", "--intent", "--model", str(DEFAULT_MODEL), "--events", str(log), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    printed = {}
    for line in out.read_text().splitlines():
        user, value = line.split("\t")
        printed[user] = float(value)

    served: dict[str, float] = {}
    for recommendation in run_offline(records, Variant(DEFAULT_MODEL), partitions=4).recommendations:
        served[recommendation["user_id"]] = recommendation["purchase_intent"]
    assert set(printed) == set(served) and len(printed) > 30
    assert len({round(v, 3) for v in printed.values()}) > 5  # shoppers differ
    for user, value in printed.items():
        assert value == pytest.approx(served[user], abs=1e-6), user  # the pipeline rounds to 6 places


def test_streamed_intents_do_not_depend_on_the_batch(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    write_log(log, generate_traffic(TrafficConfig(users=30, items=200, events=600, seed=2)))
    histories = list(read_shopper_histories(log).histories.items())
    recommender = OnnxRecommender(DEFAULT_MODEL)
    one = dict(streamed_intents(recommender, histories, batch_size=1))
    many = dict(streamed_intents(recommender, histories, batch_size=7))
    assert one == many and list(one) == [user for user, _ in histories]


def test_cli_intent_needs_events(tmp_path: Path) -> None:
    _register()
    result = CliRunner().invoke(
        app, ["predict", "--intent", "--model", str(DEFAULT_MODEL), "--out", str(tmp_path / "x.tsv")]
    )
    assert result.exit_code != 0 and "--events" in result.output
