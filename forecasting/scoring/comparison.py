"""Comparing forecasters: Diebold-Mariano's test of two, the model confidence set of many.

This module needs numpy and scipy; :func:`model_confidence_set` also needs the optional ``arch``
package (``pip install 'nvda-forecast[bench]'``), imported only when it is called.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
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


@dataclass(frozen=True)
class ModelConfidenceSet:
    """The result of :func:`model_confidence_set`.

    ``included`` are the forecasters in the set (in the order of the losses' columns),
    ``excluded`` the others in the order they were eliminated; ``p_values`` maps every
    forecaster to its MCS p-value (it is in the set when that is at least ``size``).
    """

    included: tuple[str, ...]
    excluded: tuple[str, ...]
    p_values: dict[str, float]
    size: float


def model_confidence_set(
    losses: pd.DataFrame | np.ndarray,
    *,
    size: float = 0.10,
    reps: int = 1000,
    block_size: int | None = None,
    method: str = "R",
    bootstrap: str = "stationary",
    seed: int = 0,
) -> ModelConfidenceSet:
    """Hansen, Lunde and Nason's model confidence set of forecasters, by ``arch.bootstrap.MCS``.

    Starting from every forecaster, the MCS repeatedly tests whether all remaining ones have
    equal expected loss (a block bootstrap of the loss differences) and eliminates the worst
    until the test no longer rejects at ``size``. What remains contains the best forecaster(s)
    with probability at least ``1 - size`` (asymptotically): a forecaster outside it is
    significantly worse than one inside, and a set of one means a significant winner.

    Parameters
    ----------
    losses : pandas.DataFrame or numpy.ndarray
        ``T x k`` losses, one column per forecaster (a DataFrame's column names name them; an
        array's columns are named ``"0", "1", ...``), one row per day, every value finite.
    size : float, default 0.10
        The test size in (0, 1) (Hansen, Lunde and Nason report 10% and 25% sets).
    reps : int, default 1000
        Bootstrap replications.
    block_size : int, optional
        Mean block length of the bootstrap; ``arch`` uses ``sqrt(T)`` if omitted.
    method : str, default "R"
        ``"R"`` (the range statistic) or ``"max"`` (the t_max statistic).
    bootstrap : str, default "stationary"
        ``"stationary"``, ``"circular"`` or ``"moving block"``, as ``arch`` names them.
    seed : int, default 0
        The bootstrap's seed: the same losses give the same set.

    Returns
    -------
    ModelConfidenceSet
        The included and excluded forecasters and every one's p-value.

    Raises
    ------
    ImportError
        If the ``arch`` package is not installed.

    References
    ----------
    Hansen, Lunde & Nason, "The Model Confidence Set", Econometrica 79(2) (2011) 453-497.
    """
    try:
        from arch.bootstrap import MCS
    except ImportError as error:
        raise ImportError(
            "model_confidence_set needs the 'arch' package: pip install 'nvda-forecast[bench]'"
        ) from error
    frame = pd.DataFrame(losses)
    if frame.ndim != 2 or frame.shape[1] < 2 or frame.shape[0] < 2:
        raise ValueError(f"losses must be T x k with T >= 2 days and k >= 2, got {frame.shape}")
    frame.columns = [str(name) for name in frame.columns]
    if frame.columns.duplicated().any():
        raise ValueError("the forecasters' names must be distinct")
    values = frame.to_numpy(dtype="float64")
    if not np.isfinite(values).all():
        raise ValueError("losses must be finite (no NaN or inf)")
    if not 0.0 < size < 1.0:
        raise ValueError(f"size must be in (0, 1), got {size!r}")
    frame = pd.DataFrame(values, columns=frame.columns)
    procedure = MCS(
        frame, size, reps=reps, block_size=block_size, method=method, bootstrap=bootstrap, seed=seed
    )
    procedure.compute()
    p_values = procedure.pvalues["Pvalue"]
    included = set(procedure.included)
    return ModelConfidenceSet(
        included=tuple(name for name in frame.columns if name in included),
        excluded=tuple(str(name) for name in procedure.excluded),
        p_values={name: float(p_values[name]) for name in frame.columns},
        size=size,
    )
