"""How good a forecaster is: the metrics of a record, of its intervals, and a test between two.

A **record** has one row per forecast (:data:`RECORD_COLUMNS`): a retrain's **held-out** record
(its one-step forecasts of the test windows, made before it learned them) or the **walk-forward**
record (the forecast made as of each past day by whatever the policy had then, scored once the
next session closed; built one day at a time by the runs, so nothing is re-scored). Scored here:
point errors and skill against naive, interval coverage and Winkler score, the model's own
Student-t loss, the conformal scores ``|r - mu| / sigma``, and Diebold-Mariano's test of equal
accuracy. The forecasts themselves are made in :mod:`forecasting.forecast`. No TensorFlow here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

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


def _aligned(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    values = tuple(np.asarray(array, dtype="float64") for array in arrays)
    if any(value.ndim != 1 for value in values):
        raise ValueError("inputs must be one-dimensional")
    if len({len(value) for value in values}) != 1 or len(values[0]) == 0:
        raise ValueError("inputs must be non-empty and of equal length")
    return values


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of days whose actual value lies inside ``[lower, upper]`` (bounds included).

    Parameters
    ----------
    actual, lower, upper : numpy.ndarray
        What happened and the interval forecast for it, day by day.

    Returns
    -------
    float
        Empirical coverage in [0, 1].
    """
    actual, lower, upper = _aligned(actual, lower, upper)
    return float(np.mean((actual >= lower) & (actual <= upper)))


def winkler_score(
    actual: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float
) -> np.ndarray:
    """The interval (Winkler) score of each day: width plus a penalty for a miss.

    With ``alpha = 1 - level``::

        S = (upper - lower) + (2 / alpha) * (lower - actual)   if actual < lower
                            + (2 / alpha) * (actual - upper)   if actual > upper

    Lower is better. It is a proper scoring rule for the central ``level`` interval: in
    expectation it is minimised by the true ``alpha/2`` and ``1 - alpha/2`` quantiles, so it
    rewards narrow intervals only as long as they keep their coverage.

    Parameters
    ----------
    actual, lower, upper : numpy.ndarray
        What happened and the interval forecast for it, day by day (same units, e.g. dollars).
    level : float
        Nominal coverage of the interval in (0, 1), e.g. 0.95.

    Returns
    -------
    numpy.ndarray
        One score per day, in the units of ``actual``; average them for a summary.

    References
    ----------
    Winkler, "A Decision-Theoretic Approach to Interval Estimation", JASA 67 (1972) 187-191.
    Gneiting & Raftery, "Strictly Proper Scoring Rules, Prediction, and Estimation", JASA 102
    (2007) 359-378, eq. (43).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    actual, lower, upper = _aligned(actual, lower, upper)
    if np.any(lower > upper):
        raise ValueError("every lower bound must be at most its upper bound")
    penalty = 2.0 / (1.0 - level)
    below = np.maximum(lower - actual, 0.0)
    above = np.maximum(actual - upper, 0.0)
    return (upper - lower) + penalty * (below + above)


@dataclass(frozen=True)
class DieboldMariano:
    """The result of :func:`diebold_mariano`.

    ``statistic`` is negative when forecast a has the lower loss; ``p_value`` is two-sided;
    ``mean_loss_difference`` is the mean of ``|e_a|^power - |e_b|^power`` over ``n`` days.
    """

    statistic: float
    p_value: float
    n: int
    mean_loss_difference: float


def diebold_mariano(
    errors_a: np.ndarray, errors_b: np.ndarray, *, horizon: int = 1, power: float = 2
) -> DieboldMariano:
    """Test whether two forecasts of the same series are equally accurate.

    The loss differential is ``d_t = |e_a,t|^power - |e_b,t|^power``, with mean ``d_bar`` over
    ``n`` days. Its long-run variance uses the autocovariances ``g_k`` of ``d`` (divided by ``n``)
    up to lag ``horizon - 1``, which an optimal ``horizon``-step forecast's errors can have::

        DM = d_bar / sqrt((g_0 + 2 * sum_{k=1}^{horizon-1} g_k) / n)

    Harvey, Leybourne and Newbold's small-sample correction scales it and compares it with
    Student's t with ``n - 1`` degrees of freedom::

        DM* = DM * sqrt((n + 1 - 2 h + h (h - 1) / n) / n),   p = 2 * P(T_{n-1} > |DM*|)

    For ``horizon = 1`` this is exactly the paired t-test of ``d`` against 0.

    Parameters
    ----------
    errors_a, errors_b : numpy.ndarray
        Forecast errors of forecasts a and b on the same days (e.g. predicted minus actual log
        return), aligned day by day.
    horizon : int, default 1
        Forecast horizon ``h`` in steps; 1 for next-day forecasts.
    power : float, default 2
        Loss exponent: 2 for squared error, 1 for absolute error.

    Returns
    -------
    DieboldMariano
        ``statistic`` (``DM*``, negative when a has the lower loss), two-sided ``p_value``, ``n``
        and ``mean_loss_difference``.

    Notes
    -----
    - If ``d`` is constant its variance is 0 and the statistic undefined. When the losses are
      identical every day (``d = 0``, e.g. two forecasts that coincide), there is no evidence of a
      difference: ``statistic = 0`` and ``p_value = 1``. A constant non-zero ``d`` gives NaN for
      both.
    - With ``horizon > 1`` the long-run variance estimate can be negative; as R's
      ``forecast::dm.test`` does, the test then falls back to ``g_0`` alone (``horizon = 1``'s).

    References
    ----------
    Diebold & Mariano, "Comparing Predictive Accuracy", JBES 13 (1995) 253-263.
    Harvey, Leybourne & Newbold, "Testing the Equality of Prediction Mean Squared Errors",
    IJF 13 (1997) 281-291.
    """
    errors_a, errors_b = _aligned(errors_a, errors_b)
    if not (np.isfinite(errors_a).all() and np.isfinite(errors_b).all()):
        raise ValueError("errors must be finite (no NaN or inf)")
    if power <= 0:
        raise ValueError(f"power must be positive, got {power!r}")
    n = len(errors_a)
    if not 1 <= horizon < n:
        raise ValueError(f"horizon must be in [1, n) with n = {n} errors, got {horizon!r}")
    differential = np.abs(errors_a) ** power - np.abs(errors_b) ** power
    mean_difference = float(differential.mean())
    if np.all(differential == differential[0]):
        if differential[0] == 0.0:
            return DieboldMariano(statistic=0.0, p_value=1.0, n=n, mean_loss_difference=0.0)
        return DieboldMariano(math.nan, math.nan, n, mean_difference)
    centred = differential - mean_difference
    autocovariance = [float(centred[k:] @ centred[: n - k]) / n for k in range(horizon)]
    long_run_variance = autocovariance[0] + 2.0 * sum(autocovariance[1:])
    if long_run_variance <= 0.0:
        long_run_variance = autocovariance[0]
    statistic = mean_difference / math.sqrt(long_run_variance / n)
    correction = math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    statistic *= correction
    p_value = float(2.0 * stats.t.sf(abs(statistic), df=n - 1))
    return DieboldMariano(statistic, p_value, n, mean_difference)
