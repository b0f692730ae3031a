"""The forecast against the naive last-value forecast: on a seasonal series, and the acceptance
check on a generated 7-day log with a daily pattern, through the `streams demand` commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from streams.cli import _register, app
from streams.forecast.backtest import backtest
from streams.forecast.model import holt_winters, naive
from streams.generate import TrafficConfig, generate_traffic
from streams.logs import write_log
from streams.offline.replay import Variant, run_offline, write_run
from streams.schemas import validate


def seasonal_counts(days: int, seed: int = 1) -> np.ndarray:
    hours = np.arange(days * 24)
    rate = 20 * (1 + 0.8 * np.sin(2 * np.pi * hours / 24))
    return np.random.default_rng(seed).poisson(rate).astype(float)


def test_holt_winters_beats_the_last_value_on_a_daily_season() -> None:
    result = backtest("total:all", seasonal_counts(6), min_train=72, step=12)
    assert result.origins == 5
    for horizon in ("next_hour", "next_day"):
        assert result.scores[horizon]["forecast"].mase < result.scores[horizon]["naive"].mase, horizon


def test_short_histories_fall_back_to_simpler_methods() -> None:
    assert holt_winters(np.array([3.0])).method == "last-value"
    assert holt_winters(np.array([3.0, 5.0, 4.0])).method == "simple-exponential-smoothing"
    assert holt_winters(seasonal_counts(2)).method == "holt-winters"
    assert naive(np.array([1.0, 2.0, 3.0])).next_hour == 3.0
    assert naive(np.arange(48.0)).next_day == sum(range(24, 48))
    with pytest.raises(ValueError, match="needs at least"):
        backtest("total:all", seasonal_counts(3), min_train=72)


@pytest.fixture(scope="module")
def week_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log = tmp_path_factory.mktemp("week") / "week.jsonl.gz"
    config = TrafficConfig(users=1_000, items=2_000, events=10**6, seed=7, daily_pattern=True, days=7)
    write_log(log, generate_traffic(config))
    return log


def test_on_a_generated_week_the_forecast_beats_the_naive_forecast_on_mase(
    week_log: Path, tmp_path: Path
) -> None:
    _register()
    out = tmp_path / "backtest.json"
    args = ["demand", "backtest", str(week_log), "--no-categories", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["hours"] >= 7 * 24 - 2  # the week, less the hours still open at its end
    [total] = report["keys"]
    assert total["key"] == "total:all" and total["origins"] >= 12
    for horizon in ("next_hour", "next_day"):
        assert total[horizon]["forecast"]["mase"] < total[horizon]["naive"]["mase"], horizon
    assert "total:all" in result.output and "MASE" in result.output


def test_forecast_reads_what_an_offline_replay_wrote(tmp_path: Path) -> None:
    config = TrafficConfig(users=300, items=500, events=10**6, seed=3, daily_pattern=True, days=2.5)
    write_run(run_offline(list(generate_traffic(config)), Variant(None), 4), tmp_path / "run")
    _register()
    result = CliRunner().invoke(app, ["demand", "forecast", str(tmp_path / "run" / "demand.jsonl")])
    assert result.exit_code == 0, result.output
    rows = {(row["scope"], row["key"]): row for row in map(json.loads, result.output.splitlines())}
    assert rows["total", "all"]["method"] == "holt-winters" and len(rows) > 1  # categories too
    assert all(row["next_day"] >= row["next_hour"] >= 0 for row in rows.values())
    for row in rows.values():
        validate("demand_forecast", row)
