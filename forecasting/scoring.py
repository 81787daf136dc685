"""Scores of interval forecasts and a test of equal predictive accuracy.

Point errors (RMSE, MAE, MAPE, directional accuracy) live in :mod:`forecasting.evaluation`; this
module adds what judges intervals (coverage, the Winkler interval score) and what says whether one
forecast's errors are significantly smaller than another's (Diebold-Mariano).

This module needs numpy and scipy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


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
