"""Step 7: the next session's forecasts, and a retrain's forecasts of its held-out days.

A forecast of the next log return is a location ``mu`` and a scale ``sigma``; its price forecast
is ``base_close * exp(mu)``, the naive forecast is the base close itself. Intervals are
``base_close * exp(mu -/+ q * sigma)``, where ``q`` is a conformal quantile of the realized
scores ``|r - mu| / sigma`` that adaptive conformal inference keeps honest under drift
(``forecasting.conformal``). The records these forecasts make are scored in
:mod:`forecasting.scoring`.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import asdict, dataclass

from forecasting.tensorflow_env import set_tensorflow_defaults

# Whichever module imports TensorFlow first, it starts with the project's defaults.
set_tensorflow_defaults()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from forecasting.baselines import garch_forecasts  # noqa: E402
from forecasting.calendar import next_trading_day  # noqa: E402
from forecasting.config import ServingConfig  # noqa: E402
from forecasting.conformal import adaptive_quantiles, minimum_scores  # noqa: E402
from forecasting.errors import InsufficientDataError  # noqa: E402
from forecasting.features import PreparedData, Split  # noqa: E402
from forecasting.model import predict_distribution  # noqa: E402
from forecasting.scoring import INTERVAL_COLUMNS, RECORD_COLUMNS, scores  # noqa: E402

logger = logging.getLogger(__name__)

INTERVAL_LEVELS = (0.80, 0.95)
GARCH_CONTENDERS = ("garch", "gjr")


@dataclass(frozen=True)
class Forecast:
    """The next session's close from one forecaster: point forecast and 80% / 95% intervals."""

    method: str
    """``lstm``, ``naive`` (the last close with volatility-scaled conformal intervals), ``garch``,
    ``gjr`` or ``garch_avg`` (the last close with GARCH(1,1)-t, GJR-GARCH(1,1)-t or their
    averaged-variance intervals)."""
    as_of_date: dt.date
    target_date: dt.date
    base_close: float
    predicted_return: float
    predicted_close: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float
    scale: float
    """Scale of the next log return: the LSTM's sigma, the baseline's realized volatility."""

    def to_dict(self) -> dict[str, float | str]:
        """The fields as a flat, JSON-ready dict (dates as ISO text)."""
        values = asdict(self)
        values["as_of_date"] = self.as_of_date.isoformat()
        values["target_date"] = self.target_date.isoformat()
        return values


@dataclass(frozen=True, eq=False)
class HeldOut:
    """A retrain's one-step forecasts of its test windows, made before it learned them."""

    test_loss: float
    """The model's own loss (Student-t NLL of the log return) on those windows."""
    record: pd.DataFrame
    """:data:`RECORD_COLUMNS` without intervals: ``predicted_close`` and ``scale`` per day."""


def _record(split: Split, location: np.ndarray, scale: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "as_of_date": split.as_of_dates.as_unit("ns"),
            "target_date": split.target_dates.as_unit("ns"),
            "base_close": split.base_close,
            "actual_close": split.target_close,
            "predicted_close": split.base_close * np.exp(location),
            "scale": scale,
            **dict.fromkeys(INTERVAL_COLUMNS, np.nan),
        },
        columns=list(RECORD_COLUMNS),
    )


def score_held_out(model: keras.Model, data: PreparedData, config: ServingConfig) -> HeldOut:
    """Forecast the test windows with a model that has not learned them, and score its loss.

    Each day's intervals are calibrated as a walk-forward run would have: adaptive conformal
    inference over the test days' scores before it, warmed up on the validation windows' scores.

    Parameters
    ----------
    model : keras.Model
        A retrain fresh from :func:`forecasting.model.train`, before it walks forward.
    data : PreparedData
        Supplies the validation and test windows.
    config : ServingConfig
        Calibration window and ACI step.

    Returns
    -------
    HeldOut
        The test loss as ``model.evaluate`` reports it, and the day-by-day forecasts.
    """
    test = data.test
    test_loss = model.evaluate(test.x, test.y, batch_size=256, verbose=0, return_dict=True)["loss"]
    record = _record(test, *predict_distribution(model, test.x))
    warmup = scores(_record(data.validation, *predict_distribution(model, data.validation.x)))
    realized, location = scores(record), np.log(record["predicted_close"] / record["base_close"])
    for level in INTERVAL_LEVELS:
        quantile = adaptive_quantiles(
            realized,
            level=level,
            gamma=config.aci_gamma,
            window=config.calibration_window,
            warmup=warmup,
        ).quantile
        half = quantile * record["scale"]
        percent = round(level * 100)
        record[f"lower_{percent}"] = record["base_close"] * np.exp(location - half)
        record[f"upper_{percent}"] = record["base_close"] * np.exp(location + half)
    return HeldOut(test_loss=float(test_loss), record=record)


def interval_quantiles(
    walk_forward: pd.DataFrame, held_out: pd.DataFrame, config: ServingConfig
) -> dict[float, float]:
    """The score quantile of each interval level for the next forecast, by adaptive conformal
    inference over the realized walk-forward scores, warmed up on the held-out scores.

    Parameters
    ----------
    walk_forward : pandas.DataFrame
        The LSTM's realized walk-forward record, oldest first (may be empty).
    held_out : pandas.DataFrame
        The latest retrain's held-out record, for the first days' calibration.
    config : ServingConfig
        Calibration window and ACI step.

    Returns
    -------
    dict
        ``{0.80: q80, 0.95: q95}``.
    """
    if not walk_forward.empty:
        # Warm-up scores are those the walk-forward record does not cover yet.
        first = walk_forward["target_date"].min()
        held_out = held_out[held_out["target_date"] < first]
    realized, warmup = scores(walk_forward), scores(held_out)
    return {
        level: adaptive_quantiles(
            realized,
            level=level,
            gamma=config.aci_gamma,
            window=config.calibration_window,
            warmup=warmup,
        ).next_quantile
        for level in INTERVAL_LEVELS
    }


def lstm_forecast(
    model: keras.Model, data: PreparedData, quantiles: dict[float, float]
) -> Forecast:
    """The LSTM's forecast of the first NYSE session after the last bar.

    Parameters
    ----------
    model : keras.Model
        The model that serves today (fitted on windows up to the last bar).
    data : PreparedData
        Supplies ``x_next``, the window ending at the last bar, and its close.
    quantiles : dict
        Score quantiles per level, from :func:`interval_quantiles`.

    Returns
    -------
    Forecast
        ``base * exp(mu)`` and the intervals ``base * exp(mu -/+ q * sigma)``.
    """
    location, scale = (float(value[0]) for value in predict_distribution(model, data.x_next))
    base = data.next_base_close
    bounds = {}
    for level in INTERVAL_LEVELS:
        half = quantiles[level] * scale
        bounds[level] = (base * math.exp(location - half), base * math.exp(location + half))
    return Forecast(
        method="lstm",
        as_of_date=data.next_as_of_date,
        target_date=next_trading_day(data.next_as_of_date),
        base_close=base,
        predicted_return=location,
        predicted_close=base * math.exp(location),
        lower_80=bounds[0.80][0],
        upper_80=bounds[0.80][1],
        lower_95=bounds[0.95][0],
        upper_95=bounds[0.95][1],
        scale=scale,
    )


def baseline_calibration_window(rows: int, config: ServingConfig, volatility_window: int) -> int:
    """The naive baseline's calibration window for a history of ``rows`` bars.

    ``config.calibration_window`` (250) where the history allows it; a shorter history, which the
    LSTM may still learn from, calibrates on what it has, down to the fewest scores that give a
    finite 95% quantile.
    """
    available = rows - volatility_window - 1
    return max(min(config.calibration_window, available), minimum_scores(INTERVAL_LEVELS[-1]))


def naive_forecast(baseline: pd.DataFrame, method: str = "naive") -> Forecast:
    """A price-only contender's forecast as of its frame's last row: by default the naive
    forecast with volatility-scaled conformal intervals.

    Parameters
    ----------
    baseline : pandas.DataFrame
        :func:`forecasting.baselines.naive_volatility_forecasts` of the history up to the as-of
        date (or a GARCH-family contender's frame, :func:`garch_contenders`); its last row is
        today's.
    method : str
        The contender's name, stored with its forecast.
    """
    if baseline.empty:
        raise InsufficientDataError(
            "the history is too short for the naive + volatility baseline's calibration; "
            "load a longer history (an earlier start) or lower NVDA_FORECAST_SERVING__"
            "CALIBRATION_WINDOW"
        )
    row = baseline.iloc[-1]
    as_of = pd.Timestamp(baseline.index[-1]).date()
    return Forecast(
        method=method,
        as_of_date=as_of,
        target_date=next_trading_day(as_of),
        base_close=float(row["base_close"]),
        predicted_return=0.0,
        predicted_close=float(row["predicted_close"]),
        lower_80=float(row["lower_80"]),
        upper_80=float(row["upper_80"]),
        lower_95=float(row["lower_95"]),
        upper_95=float(row["upper_95"]),
        scale=float(row["volatility"]),
    )


def garch_contenders(
    close: pd.Series, start: dt.date, config: ServingConfig
) -> dict[str, pd.DataFrame]:
    """GARCH(1,1)-t, GJR-GARCH(1,1)-t and their average: forecasts of every day from ``start``.

    Each GARCH is fitted on the ``config.garch_window`` returns before its refit day, refitted
    every ``config.garch_refit_every`` sessions on days anchored to the history's first bar, so a
    day's forecast is the same whichever day computes it (a replay, a rerun, a later day's
    record). ``garch_avg`` takes the mean of the two variances and of the two fitted degrees of
    freedom (a unit-variance Student-t): on the validation period it scored best of the rules
    tried (docs/model.md). All three serve the naive point (zero drift: the fitted constant mean
    is not served) with the model's own quantiles around it, not conformalized. Empty while the
    history is shorter than a fit needs.
    """
    if len(close) <= config.garch_window + 1:
        return {}
    try:
        frames = _garch_frames(close, start, config)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as error:
        # A fit that fails must not fail the day: the GARCH family sits it out, naive stands in.
        logger.warning("the GARCH-family contenders sit this day out: %s", error)
        return {}
    finite = all(np.isfinite(frame.to_numpy(dtype="float64")).all() for frame in frames.values())
    if not finite:
        logger.warning("the GARCH-family contenders sit this day out: a forecast is not finite")
        return {}
    return frames


def _garch_frames(close: pd.Series, start: dt.date, config: ServingConfig) -> dict:
    frames = {}
    for kind in GARCH_CONTENDERS:
        frames[kind] = _zero_drift(
            garch_forecasts(
                close,
                start=start,
                window=config.garch_window,
                refit_every=config.garch_refit_every,
                kind=kind,
                anchor=0,
            )
        )
    variance = (frames["garch"]["variance"] + frames["gjr"]["variance"]) / 2.0
    df = (frames["garch"]["df"] + frames["gjr"]["df"]) / 2.0
    frames["garch_avg"] = _student_t_frame(frames["garch"]["base_close"], variance, df)
    return frames


def _zero_drift(frame: pd.DataFrame) -> pd.DataFrame:
    """A GARCH frame around the last close: the interval keeps its width in log terms."""
    shift = frame["base_close"] / frame["predicted_close"]
    for column in ("predicted_close", *INTERVAL_COLUMNS):
        frame[column] = frame[column] * shift
    return frame


def _student_t_frame(base: pd.Series, variance: pd.Series, df: pd.Series) -> pd.DataFrame:
    """Intervals of ``base * exp(sigma * z)``, ``z`` a unit-variance Student-t with ``df``."""
    sigma = np.sqrt(variance)
    unit = np.sqrt((df - 2.0) / df)  # the t's scale per unit of standard deviation
    frame = pd.DataFrame({"base_close": base, "predicted_close": base})
    for level in INTERVAL_LEVELS:
        half = sigma * unit * stats.t.ppf((1.0 + level) / 2.0, df)
        frame[f"lower_{round(100 * level)}"] = base * np.exp(-half)
        frame[f"upper_{round(100 * level)}"] = base * np.exp(half)
    frame["volatility"], frame["variance"], frame["df"] = sigma, variance, df
    return frame


def same_days(baseline: pd.DataFrame, record: pd.DataFrame) -> pd.DataFrame:
    """A baseline's forecasts (indexed by as-of date) of the days a record forecast, as a record.

    Parameters
    ----------
    baseline : pandas.DataFrame
        E.g. :func:`forecasting.baselines.naive_volatility_forecasts` of the history.
    record : pandas.DataFrame
        A record (:data:`RECORD_COLUMNS`) whose as-of dates, target dates and actual closes are
        taken.

    Returns
    -------
    pandas.DataFrame
        :data:`RECORD_COLUMNS` for the days both have, so that two forecasters are scored on the
        same days and the same closes.
    """
    days = record[["as_of_date", "target_date", "actual_close"]]
    joined = days.merge(
        baseline.rename_axis("as_of_date").reset_index(), on="as_of_date", how="inner"
    )
    joined["scale"] = joined.get("volatility", np.nan)
    return joined[list(RECORD_COLUMNS)]
