"""The purchase-intent evaluation: the split and cut rule, session features, metrics, and the whole
`make eval-intent` chain on a tiny YOOCHOOSE-shaped sample with a tiny trained model."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli import _register, app
from streams.logs import LogRecord, read_log
from streams.model.intent_eval import (
    FEATURES,
    LABELS_FILE,
    TEST_LOG,
    TRAIN_LOG,
    read_scores,
    scores_of,
    session_features,
    split_sessions,
)

HOUR_MS = 3_600_000
MONDAY = 1_396_828_800_000  # 2014-04-07 00:00 UTC, a Monday


def _click(n: int, user: str, ts: int, item: str = "i1", category: str | None = None) -> LogRecord:
    value = {"event_id": f"c{n}", "user_id": user, "type": "view", "ts": ts, "item_id": item}
    if category is not None:
        value["category"] = category
    return LogRecord("clicks", user, ts, value)


def _buy(n: int, user: str, ts: int) -> LogRecord:
    value = {
        "event_id": f"b{n}",
        "user_id": user,
        "order_id": f"o{n}",
        "status": "placed",
        "items": [{"item_id": "i1", "quantity": 1}],
        "ts": ts,
    }
    return LogRecord("orders", user, ts, value)


def _log() -> list[LogRecord]:
    # Sessions start a (t=10), b (t=20), c and d (both t=30: ordered by user id), e (t=40).
    records = [
        _click(1, "a", 10),
        _click(2, "b", 20),
        _buy(3, "a", 25),
        _click(4, "a", 26),  # a click after a's buy: a is a training session, kept whole
        _click(5, "d", 30),
        _click(6, "c", 30),
        _click(7, "c", 31),
        _buy(8, "c", 32),
        _click(9, "c", 33),  # after c's first buy: cut
        _buy(10, "c", 34),
        _click(11, "e", 40),
        _buy(12, "d", 41),
        _click(13, "e", 42),
    ]
    return sorted(records, key=lambda r: r.ts)


def _ids(records: list[LogRecord]) -> list[str]:
    return [r.value["event_id"] for r in records if r.value]


def test_newest_sessions_test_cut_before_their_first_buy() -> None:
    split = split_sessions(_log(), test_fraction=0.6)  # 3 of 5 sessions: c, d, e
    assert _ids(split.train) == ["c1", "c2", "b3", "c4"]  # a and b whole, in log order
    assert _ids(split.test) == ["c5", "c6", "c7", "c11", "c13"]
    assert split.labels == {"c": 1, "d": 1, "e": 0}
    assert _ids(split.train_cut) == ["c1", "c2"]  # a cut before its buy too
    assert split.train_labels == {"a": 1, "b": 0}
    assert split.summary["train_sessions"] == 2 and split.summary["test_sessions"] == 3
    assert split.summary["test_buying"] == 2 and split.summary["test_from_ts"] == 30


def test_a_session_that_buys_before_any_click_has_nothing_to_predict_from() -> None:
    records = [_click(1, "a", 10), _click(2, "b", 20), _buy(3, "b", 20), _click(4, "b", 21)]
    records[1:3] = [records[2], records[1]]  # b's buy first at t=20
    split = split_sessions(records, test_fraction=0.5)
    assert split.labels == {} and _ids(split.test) == []
    assert split.summary["test_sessions"] == 0


def test_session_features() -> None:
    clicks = [
        {"ts": MONDAY + 9 * HOUR_MS, "item_id": "x", "type": "view", "category": "yc-cS"},
        {"ts": MONDAY + 9 * HOUR_MS + 10_000, "item_id": "y", "type": "view"},
        {"ts": MONDAY + 9 * HOUR_MS + 40_000, "item_id": "x", "type": "view", "category": "yc-c3"},
    ]
    features = dict(zip(FEATURES, session_features(clicks), strict=True))
    assert features == {
        "clicks": 3.0,
        "distinct_items": 2.0,
        "duration_s": 40.0,
        "max_item_repeats": 2.0,
        "mean_dwell_s": 20.0,
        "last_dwell_s": 30.0,
        "max_dwell_s": 30.0,
        "hour": 9.0,
        "weekday": 0.0,
        "special_offer_share": pytest.approx(1 / 3),
        "categorised_share": pytest.approx(2 / 3),
        "distinct_categories": 2.0,
    }
    one = dict(zip(FEATURES, session_features(clicks[:1]), strict=True))
    assert one["duration_s"] == one["mean_dwell_s"] == one["last_dwell_s"] == 0.0


def test_metrics() -> None:
    scores = scores_of([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert scores["roc_auc"] == pytest.approx(0.75)  # 3 of 4 pairs ordered right
    assert scores["pr_auc"] == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)  # precision at each positive
    assert scores_of([0, 1], [0.5, 0.5])["roc_auc"] == pytest.approx(0.5)  # a tie counts half
    assert all(math.isnan(v) for v in scores_of([1, 1], [0.2, 0.3]).values())


def _yoochoose_like(folder: Path) -> None:
    """Sessions where long sessions buy more (what a shopper does, not which items: the intent head
    learns from behaviour, see `TrainConfig.intent_permuted_items`)."""
    from tests.test_yoochoose import T0, _write

    rng = random.Random(4)
    clicks, buys = [], []
    for session in range(300):
        start = T0 + session * 600.0
        n = rng.randint(1, 6)
        items = [str(rng.randrange(12)) for _ in range(n)]
        for i, item in enumerate(items):
            clicks.append((str(session), start + 20.0 * i, item, rng.choice(["0", "S", "3"])))
        if rng.random() < 0.03 + 0.14 * (n - 1):
            buys.append((str(session), start + 20.0 * n, items[-1], 1046, 1))
    _write(folder, clicks, buys)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_eval_intent_chain_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="torch is not installed (pip install -e '.[train]')")
    pytest.importorskip("rdata", reason="rdata is not installed (pip install -e '.[train]')")
    _yoochoose_like(tmp_path / "sample")
    _register()
    runner = CliRunner()
    log, split, model = tmp_path / "yc.jsonl.gz", tmp_path / "split", tmp_path / "model"
    train = ["--dim", "16", "--epochs", "3", "--batch-size", "64", "--lr", "5e-3", "--valid-fraction", "0.2"]
    intents = split / "intent.tsv"
    steps = [
        ["import", "yoochoose", str(tmp_path / "sample"), "--out", str(log)],
        ["intent-split", "--events", str(log), "--out", str(split)],
        [
            "train",
            "--events",
            str(split / TRAIN_LOG),
            "--out",
            str(model),
            *train,
            "--threads",
            "1",
            "--quiet",
        ],
        [
            "predict",
            "--intent",
            "--model",
            str(model),
            "--events",
            str(split / TEST_LOG),
            "--out",
            str(intents),
        ],
        [
            "evaluate-intent",
            "--split",
            str(split),
            "--predictions",
            str(intents),
            "--json",
            str(split / "e.json"),
        ],
    ]
    for step in steps:
        result = runner.invoke(app, step)
        assert result.exit_code == 0, f"{step[0]}: {result.output}"
    assert "boosted_sessions" in result.output and "ROC-AUC" in result.output

    labels = read_scores(split / LABELS_FILE)
    assert len(labels) == 60  # the newest 20 % of 300 sessions
    assert not any(r.topic == "orders" for r in read_log(split / TEST_LOG))  # cut before each buy
    predicted = read_scores(intents)
    assert set(predicted) == set(labels) and all(0.0 < v < 1.0 for v in predicted.values())
    report = json.loads((split / "e.json").read_text())
    assert set(report["results"]) == {"model", "view_count", "duration", "boosted_sessions"}
    assert report["test_sessions"] == 60 and report["test_buying"] == sum(labels.values()) > 0
    # The model learnt which items lead to a buy: better than chance on sessions it never saw.
    assert report["results"]["model"]["roc_auc"] > 0.6
