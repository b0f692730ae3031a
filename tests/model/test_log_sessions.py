"""Event log -> SR-GNN session files: sessions, the time split, SR-GNN's test filter, repeats kept."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streams.cli import _register, app
from streams.generate import TrafficConfig, generate_traffic
from streams.logs import LogRecord, write_log
from streams.model.evaluate import TEST_FILE, TRAIN_FILE
from streams.model.log_sessions import (
    TEST_SESSIONS_FILE,
    LogSession,
    build_session_files,
    repeat_rates,
    sessions_from_log,
    split_sessions,
)
from streams.model.sessions import read_prefix_targets, read_sessions

T0 = 1_700_000_000_000
MINUTE = 60_000


def click(user: str, ts: int, kind: str, item: str | None = None, session: str | None = None) -> LogRecord:
    value: dict[str, Any] = {"event_id": f"{user}-{ts}-{kind}", "user_id": user, "type": kind, "ts": ts}
    if item is not None:
        value["item_id"] = item
    if session is not None:
        value["session_id"] = session
    if kind == "search":
        value["query"] = "shoes"
    if kind == "impression":
        value.update(rec_id="r1", placement="home", items=["a", "b"])
    return LogRecord("clicks", user, ts, value)


def tiny_log() -> list[LogRecord]:
    """Six sessions; by first click: A (u1), B (u2), C (u3, one item), D (u1), E (u2), F (u3).

    The file is not in time order: sessions are built in event time, whatever the log's order.
    """
    order = {"event_id": "o1", "user_id": "u1", "order_id": "x", "status": "placed", "ts": T0 + 9 * MINUTE}
    order["items"] = [{"item_id": "c", "quantity": 1, "price": 5.0}]
    return [
        LogRecord("catalog", "a", T0, {"item_id": "a", "ts": T0}),
        click("u1", T0 + 3 * MINUTE, "view", "c", "s2"),  # D
        click("u1", T0 + 3 * MINUTE + 1, "view", "a", "s2"),
        click("u1", T0 + 5, "view", "c", "s1"),  # A, its last click written first
        click("u1", T0, "view", "a", "s1"),
        click("u1", T0 + 1, "view", "b", "s1"),
        click("u1", T0 + 2, "view", "b", "s1"),
        click("u1", T0 + 3, "add_to_cart", "b", "s1"),
        click("u1", T0 + 4, "search", session="s1"),
        click("u2", T0 + MINUTE, "view", "a", "s1"),  # B: same session id as u1's A, another shopper
        click("u2", T0 + MINUTE + 1, "impression", session="s1"),
        click("u2", T0 + MINUTE + 2, "view", "d", "s1"),
        click("u3", T0 + 2 * MINUTE, "view", "e", "s9"),  # C: one item
        click("u2", T0 + 4 * MINUTE, "view", "a", "s2"),  # E: x is never seen in training
        click("u2", T0 + 4 * MINUTE + 1, "view", "x", "s2"),
        click("u2", T0 + 4 * MINUTE + 2, "view", "b", "s2"),
        click("u2", T0 + 4 * MINUTE + 3, "view", "b", "s2"),
        click("u2", T0 + 4 * MINUTE + 4, "view", "a", "s2"),
        click("u3", T0 + 5 * MINUTE, "view", "y", "s10"),  # F: y unseen, leaves one item
        click("u3", T0 + 5 * MINUTE + 1, "view", "a", "s10"),
        LogRecord("orders", "u1", T0 + 9 * MINUTE, order),
    ]


def items_by_session(sessions: list[LogSession]) -> dict[tuple[str, str], tuple[str, ...]]:
    return {(s.user, s.key): s.items for s in sessions}


def test_sessions_are_per_shopper_and_session_id_in_event_time_without_impressions() -> None:
    skipped: Counter[str] = Counter()
    sessions = items_by_session(sessions_from_log(tiny_log(), skipped))
    assert sessions == {
        ("u1", "s1"): ("a", "b", "b", "b", "c"),  # the add-to-cart counts, the search has no item
        ("u1", "s2"): ("c", "a"),
        ("u2", "s1"): ("a", "d"),  # the impression between is not the shopper's click
        ("u2", "s2"): ("a", "x", "b", "b", "a"),
        ("u3", "s9"): ("e",),
        ("u3", "s10"): ("y", "a"),
    }
    assert not skipped


def test_clicks_without_session_id_split_on_30_minutes_of_inactivity() -> None:
    records = [
        click("u4", T0, "view", "p"),
        click("u4", T0 + 30 * MINUTE, "view", "q"),  # exactly 30 minutes: same session
        click("u4", T0 + 30 * MINUTE + 5 * MINUTE, "search"),  # a search keeps the session alive
        click("u4", T0 + 65 * MINUTE + 1, "view", "p"),  # 30 min + 1 ms after the search
        click("u4", T0 + 66 * MINUTE, "view", "r"),
    ]
    sessions = sessions_from_log(records, Counter())
    assert sorted((s.start, s.items) for s in sessions) == [
        (T0, ("p", "q")),
        (T0 + 65 * MINUTE + 1, ("p", "r")),
    ]


def test_a_click_without_session_id_continues_the_sent_session_until_30_minutes_pass() -> None:
    records = [
        click("u5", T0, "view", "p", "s1"),
        click("u5", T0 + MINUTE, "view", "q"),  # as `streams train --events` reads it: still s1
        click("u5", T0 + 40 * MINUTE, "view", "r"),
        click("u5", T0 + 41 * MINUTE, "view", "p"),
    ]
    sessions = sessions_from_log(records, Counter())
    assert sorted((s.key, s.items) for s in sessions) == [
        (f"@{T0 + 40 * MINUTE}", ("r", "p")),
        ("s1", ("p", "q")),
    ]


def test_split_by_first_click_drops_unseen_test_items_and_keeps_repeats() -> None:
    split = split_sessions(sessions_from_log(tiny_log(), Counter()), test_fraction=0.4)
    # Five sessions of two items or more; the newest 40% (two: E and F) are the test sessions.
    assert split.train == [["a", "b", "b", "b", "c"], ["a", "d"], ["c", "a"]]
    assert split.test == [["a", "b", "b", "a"]]  # x removed; F is left with one item and dropped
    assert split.cases == [(["a", "b", "b"], "a"), (["a", "b"], "b"), (["a"], "b")]  # longest first
    assert split.counts == {
        "sessions": 6,
        "single_item_sessions_dropped": 1,
        "train_sessions": 3,
        "train_items": 4,
        "test_items_unseen_dropped": 2,
        "test_sessions_dropped": 1,
        "test_sessions": 1,
        "test_cases": 3,
    }


def test_repeat_rates_count_targets_in_the_prefix_and_equal_to_its_last_item() -> None:
    cases = [(["a", "b", "b"], "a"), (["a", "b"], "b"), (["a"], "b"), (["c"], "c")]
    assert repeat_rates(cases) == {"repeat_in_prefix": 0.75, "repeat_last_item": 0.5}
    assert repeat_rates([]) == {"repeat_in_prefix": 0.0, "repeat_last_item": 0.0}


def test_sessions_starting_together_are_ordered_by_shopper_then_session() -> None:
    sessions = [LogSession(T0, user, "s", ("a", "b")) for user in ("u3", "u1", "u2")]
    sessions.append(LogSession(T0 - 1, "u9", "s", ("c", "a")))
    split = split_sessions(sessions, test_fraction=0.25)
    assert split.train == [["c", "a"], ["a", "b"], ["a", "b"]] and split.test == [["a", "b"]]


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_split_rejects_degenerate_fractions(fraction: float) -> None:
    with pytest.raises(ValueError, match="test fraction"):
        split_sessions([], fraction)


def test_clicks_the_worker_would_dead_letter_are_counted_not_used() -> None:
    bad = click("u1", T0 + 10, "view", "b", "s1")
    assert bad.value is not None
    no_user = LogRecord("clicks", "u1", T0 + 10, {k: v for k, v in bad.value.items() if k != "user_id"})
    records = [
        *tiny_log(),
        no_user,
        LogRecord("clicks", "u1", T0 + 11, value_bytes=b"\xc1 not msgpack"),
        click("u1", T0 + 12, "view", "two words", "s1"),
    ]
    skipped: Counter[str] = Counter()
    sessions = items_by_session(sessions_from_log(records, skipped))
    assert sessions[("u1", "s1")] == ("a", "b", "b", "b", "c")
    assert skipped == {
        "click missing_field (data.user_id)": 1,
        "click not a JSON map": 1,
        "item_id with white space": 1,
    }


def test_files_read_back_as_written_and_are_the_same_bytes_on_a_second_run(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl.gz"
    write_log(log, tiny_log())
    split = build_session_files(log, tmp_path / "a", test_fraction=0.4)
    build_session_files(log, tmp_path / "b", test_fraction=0.4)
    names = (TRAIN_FILE, TEST_SESSIONS_FILE, TEST_FILE)
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert read_sessions(tmp_path / "a" / TRAIN_FILE) == split.train
    assert read_sessions(tmp_path / "a" / TEST_SESSIONS_FILE) == split.test
    assert read_prefix_targets(tmp_path / "a" / TEST_FILE) == split.cases


def test_a_log_without_test_cases_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    write_log(log, [click("u1", T0, "view", "a", "s1"), click("u1", T0 + 1, "view", "b", "s1")])
    with pytest.raises(ValueError, match="1 training sessions and 0 test cases"):
        build_session_files(log, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_generated_traffic_gives_one_session_per_generated_session_id(tmp_path: Path) -> None:
    records = list(generate_traffic(TrafficConfig(users=30, items=80, events=2_000, seed=3)))
    clicks = [r.value for r in records if r.topic == "clicks" and r.value is not None]
    ids = {(c["user_id"], c["session_id"]) for c in clicks}
    with_items = Counter(
        (c["user_id"], c["session_id"]) for c in clicks if c["type"] in ("view", "add_to_cart")
    )
    log = tmp_path / "traffic.jsonl.gz"
    write_log(log, records)
    split = build_session_files(log, tmp_path / "out")
    assert split.counts["sessions"] == len(ids)
    assert split.counts["single_item_sessions_dropped"] == sum(1 for key in ids if with_items[key] < 2)
    kept = split.counts["sessions"] - split.counts["single_item_sessions_dropped"]
    assert split.counts["train_sessions"] == kept - int(kept * 0.2 + 0.5)
    assert not split.skipped
    # Shoppers re-view items (the generator's repeat views), so S-POP has something to find.
    assert split.summary()["repeat_in_prefix"] > 0.1


def test_the_command_prints_counts_and_repeat_rates_and_writes_json(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    write_log(log, tiny_log())
    _register()
    args = ["sessions", str(log), "--out", str(tmp_path / "out"), "--test-fraction", "0.4"]
    result = CliRunner().invoke(app, [*args, "--json", str(tmp_path / "summary.json")])
    assert result.exit_code == 0, result.output
    assert "6 sessions (1 of one item dropped): 3 train over 4 items, 1 test" in result.output
    assert "66.7% of test targets are in their prefix, 33.3% are its last item" in result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["test_cases"] == 3 and summary["repeat_last_item"] == pytest.approx(1 / 3)
    assert read_prefix_targets(tmp_path / "out" / TEST_FILE)[0] == (["a", "b", "b"], "a")


def test_the_command_names_the_problem_of_a_log_with_no_sessions(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    write_log(log, [click("u1", T0, "view", "a", "s1")])
    _register()
    result = CliRunner().invoke(app, ["sessions", str(log), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    text = " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())  # unwrapped from typer's error box
    assert "0 training sessions and 0 test cases" in text
