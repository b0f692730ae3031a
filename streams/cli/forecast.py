"""`streams demand backtest` and `streams demand forecast`: orders in the next hour and day."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from streams.cli import app
from streams.cli.options import Bootstrap, Prefix, settings_from
from streams.core.demand import MEASURES

if TYPE_CHECKING:
    from streams.forecast.series import HourlySeries

demand_app = typer.Typer(no_args_is_help=True, help="Demand forecasts from the demand windows.")
app.add_typer(demand_app, name="demand")

CategoriesOption = Annotated[
    bool, typer.Option("--categories/--no-categories", help="per category too, not only the total")
]
Measure = StrEnum("Measure", {name: name for name in MEASURES})  # type: ignore[misc]
MeasureOption = Annotated[Measure, typer.Option(help="what to forecast")]
RulesOption = Annotated[
    Path | None, typer.Option(exists=True, dir_okay=False, help="Rules config (TOML or JSON)")
]


@demand_app.command()
def backtest(
    log: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Event log (JSON lines, .gz ok)")],
    step_hours: Annotated[int, typer.Option(min=1, help="hours between forecast origins")] = 6,
    min_train_hours: Annotated[int, typer.Option(min=48, help="history before the first origin")] = 72,
    categories: CategoriesOption = True,
    partitions: Annotated[int | None, typer.Option(help="Partitions to simulate")] = None,
    rules: RulesOption = None,
    out: Annotated[Path | None, typer.Option(help="Write the report as JSON here")] = None,
) -> None:
    """Replay a log offline through the core's demand windows, then score the forecast of orders per
    hour and per day against the naive last-value forecast at rolling origins (MAPE, MASE)."""
    from streams.forecast.backtest import HORIZONS
    from streams.forecast.backtest import backtest as run_backtest

    series = _series_from_log(log, partitions or settings_from().partitions, rules, categories)
    results = [
        run_backtest(key, s.values, min_train=min_train_hours, step=step_hours) for key, s in series.items()
    ]
    hours = len(next(iter(series.values())).values) if series else 0
    typer.echo(f"{hours} complete hours of orders; origins every {step_hours} h after {min_train_hours} h")
    typer.echo(f"{'key':<24} {'horizon':<10} {'MASE':>7} {'naive':>7} {'MAPE %':>8} {'naive':>8}")
    for result in results:
        for horizon, by_method in result.scores.items():
            f, n = by_method["forecast"], by_method["naive"]
            typer.echo(
                f"{result.key:<24} {horizon:<10} {f.mase:>7.3f} {n.mase:>7.3f} "
                f"{_pct(f.mape):>8} {_pct(n.mape):>8}"
            )
    for horizon in HORIZONS:
        better = sum(r.scores[horizon]["forecast"].mase < r.scores[horizon]["naive"].mase for r in results)
        typer.echo(f"{horizon}: forecast MASE below the naive one's for {better} of {len(results)} series")
    if out is not None:
        report = {"hours": hours, "step_hours": step_hours, "min_train_hours": min_train_hours}
        report["keys"] = [r.as_dict() for r in results]  # type: ignore[assignment]
        out.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")


@demand_app.command()
def forecast(
    demand: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="demand.jsonl of `streams replay --offline`")
    ],
    measure: MeasureOption = Measure.orders,
    categories: CategoriesOption = True,
) -> None:
    """Forecasts for the next hour and the next 24 hours per key from a demand file's complete hours,
    one `demand-forecasts` event per line."""
    from streams.forecast.publish import forecasts
    from streams.forecast.series import HourlyDemand

    hourly = HourlyDemand(measure.value, _scopes(categories))
    with demand.open(encoding="utf-8") as f:
        for line in f:
            hourly.add(json.loads(line))
    for value in forecasts(hourly):
        typer.echo(json.dumps(value, sort_keys=True))


@demand_app.command()
def follow(
    measure: MeasureOption = Measure.orders,
    categories: CategoriesOption = True,
    history_days: Annotated[float, typer.Option(min=2, help="days of hourly history kept and fitted")] = 28,
    until_idle: Annotated[
        float | None, typer.Option(help="stop after this many seconds without demand events")
    ] = None,
    bootstrap: Bootstrap = None,
    topic_prefix: Prefix = None,
) -> None:
    """Read the `demand` topic and send fresh forecasts to `demand-forecasts` each time an hour has
    closed on every partition (STREAMS_PARTITIONS)."""
    from streams.forecast.publish import follow as run_follow
    from streams.forecast.series import HourlyDemand

    settings = settings_from(bootstrap, topic_prefix)
    hourly = HourlyDemand(measure.value, _scopes(categories), partitions=settings.partitions)

    def report(value: dict[str, Any]) -> None:
        hour, day, method = value["next_hour"], value["next_day"], value["method"]
        key = f"{value['scope']}:{value['key']}"
        typer.echo(f"{key} as of {value['as_of']}: next hour {hour:.2f}, next day {day:.1f} ({method})")

    sent = run_follow(settings, hourly, history_days, until_idle, on_sent=report)
    typer.echo(f"{sent} forecasts sent")


def _scopes(categories: bool) -> tuple[str, ...]:
    return ("total", "category") if categories else ("total",)


def _series_from_log(
    log: Path, partitions: int, rules: Path | None, categories: bool
) -> dict[str, HourlySeries]:
    from streams.core.config import RulesConfig
    from streams.core.demand import DEMAND
    from streams.core.processor import Processor
    from streams.forecast.series import hourly_series
    from streams.logs import read_log
    from streams.offline.engine import OfflineEngine

    # No model: only the demand windows are wanted, and they do not depend on it.
    processor = Processor(None, RulesConfig.load(rules), catalog={})
    result = OfflineEngine(processor, partitions).run(read_log(log))
    demand = (o.value for o in result.outputs if o.topic == DEMAND)
    return hourly_series(demand, scopes=_scopes(categories))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
