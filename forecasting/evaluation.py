"""How good a model is: test loss, price-unit errors against the naive forecast, intervals.

The model predicts a log return r; its price forecast is ``base_close * exp(r)``, where the base
close is the close of the window's last day. The naive forecast is that base close itself.

Prediction intervals come from volatility-normalised split-conformal calibration on the
validation windows: the score of a window is ``|actual return - predicted return| / volatility``
(volatility = rolling standard deviation of daily log returns known at the window's end); the
level-``p`` quantile ``q`` is the ``ceil((n + 1) p)``-th smallest of the ``n`` scores, and the
interval of a new window is ``base_close * exp(predicted return -/+ q * volatility)``. Under
exchangeability of scores this covers with probability at least ``p``; dividing by volatility
makes the interval widen in turbulent regimes and narrow in calm ones.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
from dataclasses import asdict, dataclass, field

# As in forecasting.model: quiet TensorFlow's start-up, whichever module imports it first.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras
import numpy as np
import pandas as pd

from forecasting.calendar import next_trading_day
from forecasting.features import PreparedData

logger = logging.getLogger(__name__)

INTERVAL_LEVELS = (0.80, 0.95)
# Volatility below 0.01% a day only happens on degenerate data; the floor avoids dividing by 0.
VOLATILITY_FLOOR = 1e-4
PREDICTION_COLUMNS = (
    "as_of_date",
    "target_date",
    "base_close",
    "actual_close",
    "predicted_close",
    "naive_close",
    "lower_80",
    "upper_80",
    "lower_95",
    "upper_95",
)


@dataclass(frozen=True)
class PointMetrics:
    """Errors of price forecasts: RMSE and MAE in dollars, MAPE in percent, hit rate in [0, 1]."""

    rmse: float
    mae: float
    mape: float
    directional_accuracy: float


@dataclass(frozen=True)
class Calibration:
    """Conformal score quantiles, one per level of :data:`INTERVAL_LEVELS`."""

    quantile_80: float
    quantile_95: float
    n_calibration: int
    method: str = "volatility-normalised split conformal"

    def quantile(self, level: float) -> float:
        """The score quantile for ``level`` (0.80 or 0.95)."""
        quantiles = {0.80: self.quantile_80, 0.95: self.quantile_95}
        if level not in quantiles:
            raise ValueError(f"level must be one of {INTERVAL_LEVELS}, got {level!r}")
        return quantiles[level]


@dataclass(frozen=True, eq=False)
class Evaluation:
    """A model's quality on the test windows; :meth:`to_dict` gives the scalars for storage."""

    test_loss: float
    rmse: float
    mae: float
    mape: float
    naive_rmse: float
    naive_mae: float
    naive_mape: float
    skill: float
    directional_accuracy: float
    coverage_80: float
    coverage_95: float
    n_train: int
    n_validation: int
    n_test: int
    test_start: dt.date
    test_end: dt.date
    calibration: Calibration
    test_predictions: pd.DataFrame = field(repr=False)

    def to_dict(self) -> dict[str, float | int | str]:
        """The scalar metrics and calibration as a flat, JSON-ready dict (dates as ISO text)."""
        scalars = {
            name: value
            for name, value in asdict(self).items()
            if name not in ("calibration", "test_predictions")
        }
        scalars["test_start"] = self.test_start.isoformat()
        scalars["test_end"] = self.test_end.isoformat()
        for name, value in asdict(self.calibration).items():
            scalars[f"calibration_{name}"] = value
        return scalars


@dataclass(frozen=True)
class Forecast:
    """The next session's close: point forecast and 80% / 95% intervals."""

    as_of_date: dt.date
    target_date: dt.date
    base_close: float
    predicted_return: float
    predicted_close: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float
    volatility: float

    def to_dict(self) -> dict[str, float | str]:
        """The fields as a flat, JSON-ready dict (dates as ISO text)."""
        values = asdict(self)
        values["as_of_date"] = self.as_of_date.isoformat()
        values["target_date"] = self.target_date.isoformat()
        return values


def directional_accuracy(actual_returns: np.ndarray, predicted_returns: np.ndarray) -> float:
    """Share of days whose predicted move has the sign of the actual move.

    Days on which the close did not move (actual return exactly 0) have no direction and are
    left out; a predicted move of exactly 0 calls no direction and counts as a miss.

    Parameters
    ----------
    actual_returns, predicted_returns : numpy.ndarray
        Actual and predicted log returns (or price changes), day by day.

    Returns
    -------
    float
        The hit rate in [0, 1]; NaN if the close never moved.
    """
    actual_sign = np.sign(np.asarray(actual_returns, dtype="float64"))
    predicted_sign = np.sign(np.asarray(predicted_returns, dtype="float64"))
    moved = actual_sign != 0
    if not moved.any():
        return math.nan
    return float(np.mean(actual_sign[moved] == predicted_sign[moved]))


def point_metrics(
    base_close: np.ndarray, actual_close: np.ndarray, predicted_close: np.ndarray
) -> PointMetrics:
    """RMSE, MAE, MAPE and directional accuracy of price forecasts.

    Parameters
    ----------
    base_close : numpy.ndarray
        The last known close before each forecast (sets the direction of a move).
    actual_close, predicted_close : numpy.ndarray
        What happened and what was forecast.

    Returns
    -------
    PointMetrics
        ``rmse = sqrt(mean(e^2))``, ``mae = mean(|e|)``, ``mape = 100 * mean(|e| / actual)``
        with ``e = predicted - actual``; directional accuracy per :func:`directional_accuracy`.
    """
    base, actual, predicted = (
        np.asarray(values, dtype="float64")
        for values in (base_close, actual_close, predicted_close)
    )
    if not len(actual) == len(predicted) == len(base) > 0:
        raise ValueError("base, actual and predicted closes must be non-empty and of equal length")
    errors = predicted - actual
    return PointMetrics(
        rmse=float(np.sqrt(np.mean(errors**2))),
        mae=float(np.mean(np.abs(errors))),
        mape=float(100.0 * np.mean(np.abs(errors) / actual)),
        directional_accuracy=directional_accuracy(np.log(actual / base), np.log(predicted / base)),
    )


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The split-conformal quantile: the ``ceil((n + 1) * level)``-th smallest score.

    Parameters
    ----------
    scores : numpy.ndarray
        Non-conformity scores of the ``n`` calibration samples.
    level : float
        Nominal coverage in (0, 1).

    Returns
    -------
    float
        The quantile; ``inf`` if ``n`` is too small for ``level`` (the interval is unbounded).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    ordered = np.sort(np.asarray(scores, dtype="float64"))
    rank = math.ceil((len(ordered) + 1) * level - 1e-9)
    return float(ordered[rank - 1]) if rank <= len(ordered) else math.inf


def predict_returns(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """The model's predicted log returns for windows ``x``, as float64 of shape (samples,)."""
    return np.asarray(model.predict(x, batch_size=256, verbose=0), dtype="float64").reshape(-1)


def _floored(volatility: np.ndarray) -> np.ndarray:
    return np.maximum(np.asarray(volatility, dtype="float64"), VOLATILITY_FLOOR)


def calibrate(model: keras.Model, data: PreparedData) -> Calibration:
    """Fit the interval quantiles on the validation windows' volatility-normalised residuals.

    Parameters
    ----------
    model : keras.Model
        The model whose intervals are calibrated.
    data : PreparedData
        Supplies the validation windows, their actual returns and volatilities.

    Returns
    -------
    Calibration
        The 80% and 95% score quantiles.
    """
    validation = data.validation
    actual = np.log(validation.target_close / validation.base_close)
    scores = np.abs(actual - predict_returns(model, validation.x)) / _floored(validation.volatility)
    return Calibration(
        quantile_80=conformal_quantile(scores, 0.80),
        quantile_95=conformal_quantile(scores, 0.95),
        n_calibration=len(scores),
    )


def price_interval(
    base_close: np.ndarray,
    predicted_return: np.ndarray,
    volatility: np.ndarray,
    calibration: Calibration,
    level: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper price bounds ``base * exp(r -/+ q * volatility)`` at ``level``."""
    half_width = calibration.quantile(level) * _floored(volatility)
    lower = base_close * np.exp(predicted_return - half_width)
    upper = base_close * np.exp(predicted_return + half_width)
    return lower, upper


def evaluate(
    model: keras.Model, data: PreparedData, *, calibration: Calibration | None = None
) -> Evaluation:
    """Score ``model`` on the test windows, against the naive last-close forecast.

    Parameters
    ----------
    model : keras.Model
        A model that maps windows to next-day log returns (see :mod:`forecasting.model`).
    data : PreparedData
        Test windows to score; validation windows to calibrate on.
    calibration : Calibration, optional
        Interval quantiles; fitted on the validation windows with :func:`calibrate` if omitted.

    Returns
    -------
    Evaluation
        ``test_loss`` as ``model.evaluate`` reports it (MSE of log returns), price-unit metrics,
        ``skill = rmse / naive_rmse`` (below 1 beats naive), interval coverage and the
        day-by-day test predictions.
    """
    calibration = calibration or calibrate(model, data)
    test = data.test
    test_loss = model.evaluate(test.x, test.y, batch_size=256, verbose=0, return_dict=True)["loss"]
    predicted_return = predict_returns(model, test.x)
    predicted_close = test.base_close * np.exp(predicted_return)
    ours = point_metrics(test.base_close, test.target_close, predicted_close)
    naive = point_metrics(test.base_close, test.target_close, test.base_close)
    columns: dict[str, object] = {
        "as_of_date": test.as_of_dates.date,
        "target_date": test.target_dates.date,
        "base_close": test.base_close,
        "actual_close": test.target_close,
        "predicted_close": predicted_close,
        "naive_close": test.base_close,
    }
    coverage = {}
    for level in INTERVAL_LEVELS:
        lower, upper = price_interval(
            test.base_close, predicted_return, test.volatility, calibration, level
        )
        percent = round(level * 100)
        columns[f"lower_{percent}"], columns[f"upper_{percent}"] = lower, upper
        inside = (test.target_close >= lower) & (test.target_close <= upper)
        coverage[percent] = float(np.mean(inside))
    evaluation = Evaluation(
        test_loss=float(test_loss),
        rmse=ours.rmse,
        mae=ours.mae,
        mape=ours.mape,
        naive_rmse=naive.rmse,
        naive_mae=naive.mae,
        naive_mape=naive.mape,
        skill=ours.rmse / naive.rmse if naive.rmse > 0 else math.nan,
        directional_accuracy=ours.directional_accuracy,
        coverage_80=coverage[80],
        coverage_95=coverage[95],
        n_train=len(data.train),
        n_validation=len(data.validation),
        n_test=len(test),
        test_start=test.target_dates[0].date(),
        test_end=test.target_dates[-1].date(),
        calibration=calibration,
        test_predictions=pd.DataFrame(columns, columns=list(PREDICTION_COLUMNS)),
    )
    logger.info(
        "test: loss %.3g, RMSE $%.3f (naive $%.3f, skill %.4f), 95%% coverage %.3f",
        evaluation.test_loss,
        evaluation.rmse,
        evaluation.naive_rmse,
        evaluation.skill,
        evaluation.coverage_95,
    )
    return evaluation


def forecast_next(model: keras.Model, data: PreparedData, calibration: Calibration) -> Forecast:
    """Forecast the close of the first NYSE session after the last bar.

    Parameters
    ----------
    model : keras.Model
        The model to forecast with.
    data : PreparedData
        Supplies ``x_next``, the window ending at the last bar, with its close and volatility.
    calibration : Calibration
        Interval quantiles, e.g. ``evaluate(...).calibration``.

    Returns
    -------
    Forecast
        Point forecast and 80% / 95% intervals for ``next_trading_day(last bar)``.
    """
    predicted_return = float(predict_returns(model, data.x_next)[0])
    base = np.array([data.next_base_close])
    bounds = {
        level: price_interval(
            base, np.array([predicted_return]), np.array([data.next_volatility]), calibration, level
        )
        for level in INTERVAL_LEVELS
    }
    return Forecast(
        as_of_date=data.next_as_of_date,
        target_date=next_trading_day(data.next_as_of_date),
        base_close=data.next_base_close,
        predicted_return=predicted_return,
        predicted_close=data.next_base_close * math.exp(predicted_return),
        lower_80=float(bounds[0.80][0][0]),
        upper_80=float(bounds[0.80][1][0]),
        lower_95=float(bounds[0.95][0][0]),
        upper_95=float(bounds[0.95][1][0]),
        volatility=data.next_volatility,
    )
