"""Interval forecasts: coverage, the Winkler (interval) score, and tests of the hit sequence.

Coverage overall and per tercile of a volatility proxy; the Winkler score (a proper score of a
central interval at any level); Christoffersen's (1998) likelihood-ratio tests of unconditional
coverage, independence and conditional coverage.

This module needs numpy and scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from forecasting.scoring.arrays import aligned


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
    actual, lower, upper = aligned(actual, lower, upper)
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
    actual, lower, upper = aligned(actual, lower, upper)
    if np.any(lower > upper):
        raise ValueError("every lower bound must be at most its upper bound")
    penalty = 2.0 / (1.0 - level)
    below = np.maximum(lower - actual, 0.0)
    above = np.maximum(actual - upper, 0.0)
    return (upper - lower) + penalty * (below + above)


def coverage_by_tercile(
    actual: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike, proxy: npt.ArrayLike
) -> np.ndarray:
    """Coverage of the days in each tercile of a volatility proxy: low, middle, high.

    An interval forecaster can be calibrated on average and still too narrow on volatile days
    and too wide on calm ones; this splits the days by ``proxy`` to show it. The days are
    ranked by ``proxy`` (ties in time order) and the day of rank ``k`` (from 0) goes to tercile
    ``floor(3 k / n)``: three groups of a third of the days each (to one day), whatever the
    ties.

    Which proxy matters: one known when the forecast was made (e.g. a GARCH variance forecast)
    tests calibration conditional on what the forecaster could see; a realized one (e.g. the
    Garman-Klass variance of the target day) sorts days by what happened, so every forecaster
    under-covers its top tercile by construction and only the differences between forecasters
    are informative.

    Parameters
    ----------
    actual, lower, upper : array_like
        What happened and the interval forecast for it, day by day.
    proxy : array_like
        The volatility proxy of each day (finite).

    Returns
    -------
    numpy.ndarray
        Three coverages in [0, 1]: the days of the lowest, middle and highest third of ``proxy``.
    """
    actual, lower, upper, proxy = aligned(actual, lower, upper, proxy)
    if len(actual) < 3:
        raise ValueError(f"coverage by tercile needs at least 3 days, got {len(actual)}")
    if not np.isfinite(proxy).all():
        raise ValueError("proxy must be finite (no NaN or inf)")
    order = np.argsort(proxy, kind="stable")
    tercile = np.empty(len(proxy), dtype=int)
    tercile[order] = (3 * np.arange(len(proxy))) // len(proxy)
    inside = (actual >= lower) & (actual <= upper)
    return np.array([inside[tercile == group].mean() for group in range(3)])


@dataclass(frozen=True)
class Christoffersen:
    """The result of :func:`christoffersen_test`: three likelihood ratios and their p-values.

    ``lr_uc`` tests the coverage (chi-squared, 1 df), ``lr_ind`` that a hit does not depend on
    the day before's (1 df), ``lr_cc = lr_uc + lr_ind`` both at once (2 df). A small p-value
    rejects correct (conditional) coverage.
    """

    n: int
    hit_rate: float
    lr_uc: float
    p_uc: float
    lr_ind: float
    p_ind: float
    lr_cc: float
    p_cc: float


def _bernoulli_log_likelihood(ones: float, zeros: float, probability: float) -> float:
    """``ones * log(p) + zeros * log(1 - p)`` with ``0 * log 0 = 0``."""
    return float(special.xlogy(ones, probability) + special.xlogy(zeros, 1.0 - probability))


def christoffersen_test(inside: npt.ArrayLike, level: float) -> Christoffersen:
    """Christoffersen's (1998) tests of an interval forecaster's hit sequence.

    With ``I_t = 1`` when day ``t``'s actual value lies inside its interval, ``n_1`` hits out of
    ``n`` days and ``p = level``:

    - **unconditional coverage**: ``LR_uc = -2 log[L(p) / L(pi)]`` with ``L(q) = (1 - q)^{n_0}
      q^{n_1}`` and ``pi = n_1 / n``; asymptotically chi-squared with 1 df.
    - **independence**: with ``n_ij`` the days in state ``j`` after a day in state ``i``, the
      first-order Markov chain ``pi_01 = n_01 / (n_00 + n_01)``, ``pi_11 = n_11 / (n_10 + n_11)``
      against one hit rate ``pi_2 = (n_01 + n_11) / (n - 1)``: ``LR_ind = -2 log[L(pi_2) /
      L(pi_01, pi_11)]``, 1 df. Clustered misses (a miss more likely after a miss) reject it.
    - **conditional coverage**: ``LR_cc = LR_uc + LR_ind``, 2 df (the paper's decomposition,
      exact when ``LR_uc`` ignores the first day; here it uses every day, as is usual).

    ``0 * log 0`` is taken as 0, so a sequence with no miss, or no miss after a miss, is fine.

    Parameters
    ----------
    inside : array_like
        One boolean per day, in time order: the actual value lay inside the interval.
    level : float
        The intervals' nominal coverage in (0, 1).

    Returns
    -------
    Christoffersen
        The statistics and their p-values.

    References
    ----------
    Christoffersen, "Evaluating Interval Forecasts", International Economic Review 39(4) (1998)
    841-862, Sections 3.1-3.3.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    values = np.asarray(inside)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError("inside must be a one-dimensional sequence of at least 2 days")
    if not np.isin(values, (0, 1)).all():
        raise ValueError("inside must hold booleans (or 0 and 1)")
    hits = values.astype(bool)
    n, ones = len(hits), int(hits.sum())
    hit_rate = ones / n
    lr_uc = -2.0 * (
        _bernoulli_log_likelihood(ones, n - ones, level)
        - _bernoulli_log_likelihood(ones, n - ones, hit_rate)
    )
    before, after = hits[:-1], hits[1:]
    n01, n00 = int((~before & after).sum()), int((~before & ~after).sum())
    n11, n10 = int((before & after).sum()), int((before & ~after).sum())
    pi_01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi_11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    pi_2 = (n01 + n11) / (n - 1)
    markov = _bernoulli_log_likelihood(n01, n00, pi_01) + _bernoulli_log_likelihood(n11, n10, pi_11)
    # The Markov chain nests the one-rate model: a negative value is rounding.
    lr_ind = max(0.0, -2.0 * (_bernoulli_log_likelihood(n01 + n11, n00 + n10, pi_2) - markov))
    lr_uc = max(0.0, lr_uc)
    lr_cc = lr_uc + lr_ind
    return Christoffersen(
        n=n,
        hit_rate=hit_rate,
        lr_uc=lr_uc,
        p_uc=float(stats.chi2.sf(lr_uc, 1)),
        lr_ind=lr_ind,
        p_ind=float(stats.chi2.sf(lr_ind, 1)),
        lr_cc=lr_cc,
        p_cc=float(stats.chi2.sf(lr_cc, 2)),
    )
