"""Orders in the next hour and the next day: Holt-Winters exponential smoothing (statsmodels) with
an additive daily season and a damped additive trend, fitted on the hourly series so far.

Hourly shop demand has a strong time-of-day shape; a seasonal smoother learns it from a few days
and averages the Poisson noise that makes the last hour a poor guess for the next one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

SEASON = 24  # hours
DAY = 24


@dataclass(frozen=True, slots=True)
class Forecast:
    next_hour: float
    next_day: float  # the sum of the next 24 hours
    method: str


def holt_winters(history: np.ndarray) -> Forecast:
    """The forecast from an hourly series (oldest first). Under two full seasons of history a
    seasonal model cannot be estimated: simple exponential smoothing then, and no season."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing, SimpleExpSmoothing

    history = np.asarray(history, dtype=float)
    if len(history) == 0:
        raise ValueError("no history to forecast from")
    with warnings.catch_warnings():
        # A short or flat series makes the optimiser warn about convergence; the fit is still usable.
        warnings.simplefilter("ignore")
        if len(history) >= 2 * SEASON:
            model = ExponentialSmoothing(
                history,
                trend="add",
                damped_trend=True,
                seasonal="add",
                seasonal_periods=SEASON,
                initialization_method="estimated",
            )
            method = "holt-winters"
        elif len(history) >= 2:
            model = SimpleExpSmoothing(history, initialization_method="estimated")
            method = "simple-exponential-smoothing"
        else:
            return Forecast(float(history[-1]), float(history[-1]) * DAY, "last-value")
        path = np.clip(model.fit().forecast(DAY), 0.0, None)  # counts are never negative
    return Forecast(float(path[0]), float(path.sum()), method)


def naive(history: np.ndarray) -> Forecast:
    """The last-value forecast: the last hour again, and the last 24 hours again."""
    history = np.asarray(history, dtype=float)
    return Forecast(float(history[-1]), float(history[-DAY:].sum() * DAY / min(DAY, len(history))), "naive")
