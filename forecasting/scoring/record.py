"""The metrics of a record: point errors, skill against naive, its intervals, its Student-t loss.

A **record** has one row per forecast (:data:`RECORD_COLUMNS`): a retrain's **held-out** record
(its one-step forecasts of the test windows, made before it learned them) or the **walk-forward**
record (the forecast made as of each past day by whatever the policy had then, scored once the
next session closed; built one day at a time by the runs, so nothing is re-scored). Scored here:
point errors and skill against naive, interval coverage and Winkler score
(:mod:`forecasting.scoring.intervals`), the model's own Student-t loss and the conformal scores
``|r - mu| / sigma``. The forecasts themselves are made in :mod:`forecasting.forecast`. No
TensorFlow here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.scoring.intervals import coverage, winkler_score

INTERVAL_COLUMNS = ("lower_80", "upper_80", "lower_95", "upper_95")
RECORD_COLUMNS = (
    "as_of_date",
    "target_date",
    "base_close",
    "actual_close",
    "predicted_close",
    "scale",
    *INTERVAL_COLUMNS,
)


@dataclass(frozen=True)
class PointMetrics:
    """Errors of price forecasts: RMSE and MAE in dollars, MAPE in percent, hit rate in [0, 1]."""

    rmse: float
    mae: float
    mape: float
    directional_accuracy: float


@dataclass(frozen=True)
class RecordMetrics:
    """Quality of one forecaster over a realized record, against naive on the same days."""

    n: int
    rmse: float
    mae: float
    mape: float
    naive_rmse: float
    naive_mae: float
    skill: float
    """``rmse / naive_rmse``: below 1 beats "tomorrow = today"."""
    directional_accuracy: float
    coverage_80: float
    coverage_95: float
    winkler_95: float


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


def record_metrics(record: pd.DataFrame) -> RecordMetrics | None:
    """Score a realized record (:data:`RECORD_COLUMNS`) against naive on the same days.

    Parameters
    ----------
    record : pandas.DataFrame
        One row per forecast; rows without ``actual_close`` are left out. Interval columns may
        be NaN (a held-out record has none): coverage and Winkler score are then NaN.

    Returns
    -------
    RecordMetrics or None
        None when no row has an actual close yet.
    """
    known = record[record["actual_close"].notna()]
    if known.empty:
        return None
    base, actual, predicted = (
        known[name].to_numpy(dtype="float64")
        for name in ("base_close", "actual_close", "predicted_close")
    )
    ours = point_metrics(base, actual, predicted)
    naive = point_metrics(base, actual, base)
    has_intervals = all(name in known for name in INTERVAL_COLUMNS) and bool(
        known[list(INTERVAL_COLUMNS)].notna().all(axis=None)
    )
    interval = {"coverage_80": math.nan, "coverage_95": math.nan, "winkler_95": math.nan}
    if has_intervals:
        interval = {
            "coverage_80": coverage(actual, known["lower_80"], known["upper_80"]),
            "coverage_95": coverage(actual, known["lower_95"], known["upper_95"]),
            "winkler_95": float(
                np.mean(winkler_score(actual, known["lower_95"], known["upper_95"], 0.95))
            ),
        }
    return RecordMetrics(
        n=len(known),
        rmse=ours.rmse,
        mae=ours.mae,
        mape=ours.mape,
        naive_rmse=naive.rmse,
        naive_mae=naive.mae,
        skill=ours.rmse / naive.rmse if naive.rmse > 0 else math.nan,
        directional_accuracy=ours.directional_accuracy,
        **interval,
    )


def scores(record: pd.DataFrame) -> np.ndarray:
    """Non-conformity scores ``|log(actual / base) - mu| / sigma`` of a realized record."""
    known = record[record["actual_close"].notna() & record["scale"].notna()]
    return np.abs(scores_signed(known))


def skills_on_same_days(
    candidate: pd.DataFrame, champion: pd.DataFrame
) -> tuple[float, float, int]:
    """Skill of two records over the target days both forecast and that have arrived.

    Parameters
    ----------
    candidate, champion : pandas.DataFrame
        Records (:data:`RECORD_COLUMNS`), e.g. a retrain's held-out days and the champion's
        walk-forward forecasts.

    Returns
    -------
    (float, float, int)
        Candidate skill, champion skill (RMSE / naive RMSE on the shared days) and how many
        days they share; NaN skills when they share none.
    """
    shared = candidate.merge(
        champion[["target_date", "predicted_close"]],
        on="target_date",
        suffixes=("", "_champion"),
    ).dropna(subset=["actual_close"])
    if shared.empty:
        return math.nan, math.nan, 0
    naive = shared["base_close"] - shared["actual_close"]
    naive_rmse = float(np.sqrt(np.mean(naive**2)))

    def skill(column: str) -> float:
        error = shared[column] - shared["actual_close"]
        return float(np.sqrt(np.mean(error**2))) / naive_rmse if naive_rmse > 0 else math.nan

    return skill("predicted_close"), skill("predicted_close_champion"), len(shared)


def student_t_loss(record: pd.DataFrame) -> float:
    """The model's own loss (Student-t NLL of the log return) over a realized record.

    The same quantity as ``forecasting.model.student_t_nll``, computed from stored forecasts
    (``predicted_close`` gives ``mu``, ``scale`` is ``sigma``); NaN without realized rows.
    """
    # Imported here: the model module loads TensorFlow, which nothing else in this module needs.
    from forecasting.model import STUDENT_T_DF, T_CONSTANT

    known = record[record["actual_close"].notna() & record["scale"].notna()]
    if known.empty:
        return math.nan
    z = scores_signed(known)
    df = STUDENT_T_DF
    nll = np.log(known["scale"].to_numpy(dtype="float64")) + 0.5 * (df + 1) * np.log1p(z * z / df)
    return float(np.mean(nll) - T_CONSTANT)


def scores_signed(record: pd.DataFrame) -> np.ndarray:
    """``(log(actual / base) - mu) / sigma`` of each realized forecast."""
    realized = np.log(record["actual_close"] / record["base_close"]).to_numpy(dtype="float64")
    location = np.log(record["predicted_close"] / record["base_close"]).to_numpy(dtype="float64")
    return (realized - location) / record["scale"].to_numpy(dtype="float64")
