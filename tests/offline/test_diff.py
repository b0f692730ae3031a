"""`streams diff`: what a rules change or a model change does to the same traffic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli import _register, app
from streams.generate import TrafficConfig, generate_traffic
from streams.logs import LogRecord, write_log
from streams.offline.diff import diff_runs, kendall_tau, next_items
from streams.offline.replay import Variant, run_offline
from streams.serving import DEFAULT_MODEL

MINUTE = 60_000
T0 = 1_700_000_000_000


def click(n: int, user: str, minute: float, kind: str = "view", item: str = "sku-7") -> LogRecord:
    value = {
        "event_id": f"e{n}",
        "user_id": user,
        "type": kind,
        "ts": T0 + int(minute * MINUTE),
        "item_id": item,
    }
    return LogRecord("clicks", user, value["ts"], value=value)


def rules_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_next_items_and_kendall_tau() -> None:
    log = [
        click(1, "a", 0, item="x"),
        click(2, "b", 1, item="q"),
        click(3, "a", 2, item="y"),
        click(4, "a", 3),
    ]
    assert next_items(log) == {"e1": "y", "e3": "sku-7"}
    assert kendall_tau(["a", "b", "c"], ["a", "b", "c"]) == 1.0
    assert kendall_tau(["a", "b", "c"], ["c", "b", "a"]) == -1.0
    assert kendall_tau(["a", "x"], ["a", "y"]) is None


def test_only_a_shorter_cart_timeout_adds_exactly_the_cart_trigger_it_should(tmp_path: Path) -> None:
    # Shopper "cart" leaves an item in the cart; another shopper's clicks move event time 20 min on.
    log = [click(1, "cart", 0, "add_to_cart", "sku-1")]
    log += [click(10 + m, "other", m, item=f"sku-{m}") for m in range(1, 21)]
    baseline = run_offline(log, Variant(DEFAULT_MODEL), 1)  # 30 min: not yet
    shorter = rules_file(tmp_path, "rules.toml", "[rules]\ncart_timeout_ms = 900000\n")  # 15 min
    candidate = run_offline(log, Variant(DEFAULT_MODEL, shorter), 1)
    report = diff_runs(log, baseline, candidate)
    assert report.triggers_added == {"cart_abandonment": 1} and report.triggers_removed == {}
    assert report.events == len(log) and report.changed == 0 and report.overlap == 1.0
    [trigger] = candidate.triggers
    assert trigger["user_id"] == "cart" and trigger["ts"] == T0 + 15 * MINUTE


@pytest.fixture(scope="module")
def traffic() -> list[LogRecord]:
    return list(generate_traffic(TrafficConfig(users=300, items=2_000, events=8_000, seed=21)))


def test_a_cart_timeout_diff_on_real_traffic_touches_cart_triggers_only(
    traffic: list[LogRecord], tmp_path: Path
) -> None:
    rules = rules_file(tmp_path, "rules.toml", "[rules]\ncart_timeout_ms = 600000\n")  # 10 min, not 30
    baseline = run_offline(traffic, Variant(DEFAULT_MODEL), 8)
    candidate = run_offline(traffic, Variant(DEFAULT_MODEL, rules), 8)
    report = diff_runs(traffic, baseline, candidate)
    assert report.changed == 0 and report.events == len(baseline.recommendations) > 0
    assert report.quality["baseline"] == report.quality["candidate"]
    changed_kinds = set(report.triggers_added) | set(report.triggers_removed)
    assert changed_kinds == {"cart_abandonment"}
    cart = report.triggers
    assert cart["candidate"]["cart_abandonment"] - cart["baseline"]["cart_abandonment"] == (
        report.triggers_added["cart_abandonment"] - report.triggers_removed.get("cart_abandonment", 0)
    )


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second, deliberately small model trained here on other generated traffic (extra `train`)."""
    pytest.importorskip("torch", reason="torch is not installed (pip install -e '.[train]')")
    from streams.model.train import TrainConfig, load_event_log, run_training

    folder = tmp_path_factory.mktemp("small-model")
    log = folder / "traffic.jsonl"
    write_log(log, generate_traffic(TrafficConfig(users=200, items=2_000, events=6_000, seed=8)))
    config = TrainConfig(dim=16, epochs=2, batch_size=64, patience=1, threads=2, seed=3)
    run_training(load_event_log(log, config), config, folder / "model", progress=False)
    return folder / "model"


@pytest.mark.parametrize("candidate", ["small-model", "none"])
def test_a_model_diff_reports_changed_recommendations_and_both_models_scores(
    candidate: str, traffic: list[LogRecord], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    other = str(request.getfixturevalue("small_model")) if candidate == "small-model" else "none"
    log = tmp_path / "traffic.jsonl.gz"
    write_log(log, traffic)
    out = tmp_path / "diff.json"
    _register()
    args = ["diff", str(log), "--baseline", str(DEFAULT_MODEL), "--candidate", other, "-n", "10"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "HR@10" in result.output and "overlap@10" in result.output
    report = json.loads(out.read_text())
    assert report["changed_share"] > 0.5
    base, cand = report["quality"]["baseline"], report["quality"]["candidate"]
    assert base["cases"] == cand["cases"] > 1_000
    for side in (base, cand):
        assert 0 < side["mrr"] < side["hr"] < 1
    assert (base["hr"], base["mrr"]) != (cand["hr"], cand["mrr"])
