"""Purchase-intent evaluation on sessions (`make eval-intent`): the split, the baselines, the scores.

Every shopper of the log is one session (as `streams import yoochoose` writes them). Sessions are
ordered by their first click; the older `1 - test_fraction` are training sessions, kept whole; the
newest are test sessions, each cut before its first placed order (whole when it has none), so a
prediction after the cut's last event never sees the purchase it predicts. The label: the session
places an order.

The model is scored on `streams predict --intent` over the cut test log (the serving runtime), and
compared with two heuristics (view count, session duration) and a gradient-boosted classifier on
session features, fitted on the training sessions cut by the same rule.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streams.logs import LogRecord, read_log, write_log
from streams.yoochoose import SPECIAL_OFFER

TEST_FRACTION = 0.2
TRAIN_LOG = "train.jsonl.gz"
TEST_LOG = "test.jsonl.gz"
LABELS_FILE = "test_labels.tsv"
SPLIT_FILE = "split.json"


@dataclass(slots=True)
class Session:
    user_id: str
    first_click_ts: int | None = None
    first_order: int | None = None  # log position of the session's first placed order
    bought: bool = False


@dataclass(frozen=True, slots=True)
class IntentSplit:
    train: list[LogRecord]  # training sessions, whole, in log order
    test: list[LogRecord]  # test sessions cut before their first order, in log order
    train_cut: list[LogRecord]  # training sessions cut by the same rule (the baseline's input)
    labels: dict[str, int]  # test session -> 1 if it places an order (sessions with a click before the cut)
    train_labels: dict[str, int]
    summary: dict[str, Any]


def _sessions(records: Sequence[LogRecord]) -> dict[str, Session]:
    sessions: dict[str, Session] = {}
    for position, record in enumerate(records):
        if record.value is None or record.topic not in ("clicks", "orders"):
            continue
        user = record.value["user_id"]
        session = sessions.setdefault(user, Session(user))
        if record.topic == "clicks":
            ts = record.value["ts"]
            if session.first_click_ts is None or ts < session.first_click_ts:
                session.first_click_ts = ts
        elif record.value["status"] == "placed":
            session.bought = True
            if session.first_order is None:
                session.first_order = position
    return sessions


def split_sessions(records: Sequence[LogRecord], test_fraction: float = TEST_FRACTION) -> IntentSplit:
    """Older sessions (by first click, ties by user id) train, the newest `test_fraction` test.

    `records` are in event-time order (as logs are). A session without any click has no first click
    to be ordered by and nothing to predict from: it is left out (and counted)."""
    sessions = _sessions(records)
    clicked = [s for s in sessions.values() if s.first_click_ts is not None]
    clicked.sort(key=lambda s: (s.first_click_ts, s.user_id))
    n_test = round(len(clicked) * test_fraction)
    train_ids = {s.user_id for s in clicked[: len(clicked) - n_test]}
    test_ids = {s.user_id for s in clicked[len(clicked) - n_test :]}
    train: list[LogRecord] = []
    test: list[LogRecord] = []
    cut_train: list[LogRecord] = []
    for position, record in enumerate(records):
        if record.value is None or record.topic not in ("clicks", "orders"):
            continue
        session = sessions[record.value["user_id"]]
        before_cut = session.first_order is None or position < session.first_order
        if session.user_id in train_ids:
            train.append(record)
            if before_cut:
                cut_train.append(record)
        elif session.user_id in test_ids and before_cut:
            test.append(record)
    # A session whose first order comes before any click has nothing left after the cut.
    test_users = {r.value["user_id"] for r in test if r.value is not None and r.topic == "clicks"}
    train_users = {r.value["user_id"] for r in cut_train if r.value is not None and r.topic == "clicks"}
    labels = {user: int(sessions[user].bought) for user in sorted(test_users)}
    train_labels = {user: int(sessions[user].bought) for user in sorted(train_users)}
    summary = {
        "sessions": len(sessions),
        "without_clicks": len(sessions) - len(clicked),
        "train_sessions": len(train_ids),
        "train_buying": sum(sessions[u].bought for u in train_ids),
        "test_sessions": len(labels),
        "test_buying": sum(labels.values()),
        "test_fraction": test_fraction,
        "test_from_ts": min((sessions[u].first_click_ts or 0) for u in test_ids) if test_ids else None,
    }
    return IntentSplit(train, test, cut_train, labels, train_labels, summary)


def write_split(log: Path, out_dir: Path, test_fraction: float = TEST_FRACTION) -> dict[str, Any]:
    """`split_sessions` of an event log into `out_dir`: the train log, the cut test log, the labels."""
    split = split_sessions(list(read_log(log)), test_fraction)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_log(out_dir / TRAIN_LOG, split.train)
    write_log(out_dir / TEST_LOG, split.test)
    write_labels(out_dir / LABELS_FILE, split.labels)
    summary = {"log": str(log), **split.summary}
    (out_dir / SPLIT_FILE).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def write_labels(path: Path, labels: dict[str, int]) -> None:
    path.write_text("".join(f"{user}\t{label}\n" for user, label in labels.items()), encoding="utf-8")


def read_scores(path: Path) -> dict[str, float]:
    """`user_id<TAB>value` lines (labels or `streams predict --intent` output)."""
    out: dict[str, float] = {}
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            user, sep, value = line.rstrip("\n").partition("\t")
            if not sep:
                raise ValueError(f"{path}:{number}: expected user_id<TAB>value")
            out[user] = float(value)
    return out


# -- session features -------------------------------------------------------------------------------

FEATURES: tuple[str, ...] = (
    "clicks",
    "distinct_items",
    "duration_s",
    "max_item_repeats",
    "mean_dwell_s",
    "last_dwell_s",
    "max_dwell_s",
    "hour",
    "weekday",
    "special_offer_share",
    "categorised_share",
    "distinct_categories",
)


def session_features(clicks: Sequence[dict[str, Any]]) -> list[float]:
    """`FEATURES` of one session's clicks (in event-time order; at least one). Dwell = the time from
    one click to the next; the hour (UTC) and weekday are the first click's."""
    ts = [c["ts"] for c in clicks]
    dwell = np.diff(np.array(ts, dtype=np.float64)) / 1000.0
    items = Counter(c.get("item_id") for c in clicks)
    categories = [c.get("category") for c in clicks]
    start = dt.datetime.fromtimestamp(ts[0] / 1000, tz=dt.UTC)
    n = len(clicks)
    return [
        float(n),
        float(len(items)),
        (ts[-1] - ts[0]) / 1000.0,
        float(max(items.values())),
        float(dwell.mean()) if len(dwell) else 0.0,
        float(dwell[-1]) if len(dwell) else 0.0,
        float(dwell.max()) if len(dwell) else 0.0,
        float(start.hour),
        float(start.weekday()),
        sum(c == SPECIAL_OFFER for c in categories) / n,
        sum(c is not None for c in categories) / n,
        float(len({c for c in categories if c is not None})),
    ]


def session_clicks(records: Iterable[LogRecord]) -> dict[str, list[dict[str, Any]]]:
    """Per session (user id), its clicks in log order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record.topic == "clicks" and record.value is not None:
            out.setdefault(record.value["user_id"], []).append(record.value)
    return out


def feature_matrix(clicks: dict[str, list[dict[str, Any]]], users: Sequence[str]) -> np.ndarray:
    return np.array([session_features(clicks[u]) for u in users], dtype=np.float64)


def view_count(clicks: Sequence[dict[str, Any]]) -> float:
    return float(sum(c["type"] == "view" for c in clicks))


def duration_s(clicks: Sequence[dict[str, Any]]) -> float:
    return (clicks[-1]["ts"] - clicks[0]["ts"]) / 1000.0


# -- metrics ----------------------------------------------------------------------------------------


def scores_of(labels: Sequence[int], scores: Sequence[float]) -> dict[str, float]:
    """ROC-AUC (ties count half) and PR-AUC as average precision (sklearn's step-wise sum, no
    interpolation); NaN when a class is missing."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    if y.min(initial=1) == y.max(initial=0) or len(y) == 0:
        return {"roc_auc": math.nan, "pr_auc": math.nan}
    return {"roc_auc": float(roc_auc_score(y, s)), "pr_auc": float(average_precision_score(y, s))}


def boosted_baseline(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, seed: int = 0
) -> np.ndarray:
    """P(buy) from sklearn's HistGradientBoostingClassifier on `FEATURES`, with its own early stopping
    (a tenth of the training sessions held out) and hour and weekday as categorical features."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    categorical = [FEATURES.index("hour"), FEATURES.index("weekday")]
    classifier = HistGradientBoostingClassifier(
        learning_rate=0.05,
        max_iter=500,
        categorical_features=categorical,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=30,
        random_state=seed,
    )
    classifier.fit(train_x, train_y)
    return classifier.predict_proba(test_x)[:, 1]


def evaluate_intent(split_dir: Path, predictions: Path) -> dict[str, Any]:
    """The model's predictions and every baseline against the test labels of a written split."""
    labels = read_scores(split_dir / LABELS_FILE)
    model = read_scores(predictions)
    users = list(labels)
    missing = [u for u in users if u not in model]
    if missing:
        raise ValueError(f"{predictions}: no intent for {len(missing):,} test sessions, e.g. {missing[0]}")
    y = np.array([int(labels[u]) for u in users], dtype=np.int64)
    test_clicks = session_clicks(read_log(split_dir / TEST_LOG))
    train = list(read_log(split_dir / TRAIN_LOG))
    cut_train = split_sessions(train, test_fraction=0.0)
    train_users = list(cut_train.train_labels)
    train_clicks = session_clicks(cut_train.train_cut)
    train_y = np.array([cut_train.train_labels[u] for u in train_users], dtype=np.int64)
    boosted = boosted_baseline(
        feature_matrix(train_clicks, train_users), train_y, feature_matrix(test_clicks, users)
    )
    results = {
        "model": scores_of(y, [model[u] for u in users]),
        "view_count": scores_of(y, [view_count(test_clicks[u]) for u in users]),
        "duration": scores_of(y, [duration_s(test_clicks[u]) for u in users]),
        "boosted_sessions": scores_of(y, boosted),
    }
    return {
        "test_sessions": len(users),
        "test_buying": int(y.sum()),
        "train_sessions": len(train_users),
        "train_buying": int(train_y.sum()),
        "features": list(FEATURES),
        "results": results,
    }


def format_results(report: dict[str, Any]) -> str:
    rows = [f"{'':<18} {'ROC-AUC':>8} {'PR-AUC':>8}"]
    for name, scores in report["results"].items():
        rows.append(f"{name:<18} {scores['roc_auc']:>8.4f} {scores['pr_auc']:>8.4f}")
    return "\n".join(rows)
