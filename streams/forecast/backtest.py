"""Rolling-origin backtest: at each origin, forecast from the history before it, compare with what
came. Errors are MAPE (over hours with a non-zero actual) and MASE, the forecast's mean absolute
error over the in-sample mean absolute error of the naive forecast of the same target (Hyndman &
Koehler 2006), so a MASE below the naive's means better than repeating the last value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from streams.forecast.model import DAY, Forecast, holt_winters, naive

Forecaster = Callable[[np.ndarray], Forecast]
HORIZONS = ("next_hour", "next_day")


@dataclass(frozen=True, slots=True)
class Scores:
    mape: float | None  # percent; None when every actual was zero
    mase: float


@dataclass(frozen=True, slots=True)
class BacktestResult:
    key: str
    origins: int
    scores: dict[str, dict[str, Scores]]  # horizon -> method ("forecast", "naive") -> scores

    def as_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "origins": self.origins,
            **{
                horizon: {method: {"mape": s.mape, "mase": s.mase} for method, s in by_method.items()}
                for horizon, by_method in self.scores.items()
            },
        }


def backtest(
    key: str,
    series: np.ndarray,
    min_train: int = 3 * DAY,
    step: int = 6,
    forecaster: Forecaster = holt_winters,
) -> BacktestResult:
    """Origins every `step` hours from `min_train` on, as long as a full next day is there to score."""
    series = np.asarray(series, dtype=float)
    origins = list(range(min_train, len(series) - DAY + 1, step))
    if not origins:
        raise ValueError(f"{key}: {len(series)} hours; a backtest needs at least {min_train + DAY}")
    # horizon -> method -> (absolute error, MASE scale) per origin
    errors: dict[str, dict[str, list[tuple[float, float]]]] = {
        h: {"forecast": [], "naive": []} for h in HORIZONS
    }
    actuals: dict[str, list[float]] = {h: [] for h in HORIZONS}
    for origin in origins:
        history = series[:origin]
        truth = {"next_hour": series[origin], "next_day": series[origin : origin + DAY].sum()}
        scale = {"next_hour": _naive_mae(history, 1), "next_day": _naive_mae(_day_sums(history), DAY)}
        for method, forecast in (("forecast", forecaster(history)), ("naive", naive(history))):
            for horizon in HORIZONS:
                error = abs(getattr(forecast, horizon) - truth[horizon])
                errors[horizon][method].append((float(error), scale[horizon]))
        for horizon in HORIZONS:
            actuals[horizon].append(float(truth[horizon]))
    scores = {
        horizon: {method: _scores(pairs, actuals[horizon]) for method, pairs in by_method.items()}
        for horizon, by_method in errors.items()
    }
    return BacktestResult(key, len(origins), scores)


def _day_sums(history: np.ndarray) -> np.ndarray:
    """For each hour from the second day on: the sum of the 24 hours ending there."""
    return np.convolve(history, np.ones(DAY), mode="valid")


def _naive_mae(values: np.ndarray, lag: int) -> float:
    """In-sample error of repeating the value `lag` steps back (the MASE scale); never zero."""
    if len(values) <= lag:
        return 1.0
    mae = float(np.mean(np.abs(values[lag:] - values[:-lag])))
    return mae if mae > 0 else 1.0


def _scores(pairs: list[tuple[float, float]], actual: list[float]) -> Scores:
    errors = np.array([e for e, _ in pairs])
    scaled = np.array([e / s for e, s in pairs])
    nonzero = [(e, a) for e, a in zip(errors, actual, strict=True) if a > 0]
    mape = round(float(np.mean([e / a for e, a in nonzero])) * 100, 2) if nonzero else None
    return Scores(mape, round(float(np.mean(scaled)), 4))
