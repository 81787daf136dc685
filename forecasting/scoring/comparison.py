"""Comparing forecasters: Diebold-Mariano's test of equal accuracy.

This module needs numpy and scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from forecasting.scoring.arrays import aligned


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
    errors_a, errors_b = aligned(errors_a, errors_b)
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
