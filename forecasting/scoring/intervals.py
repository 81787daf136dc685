"""Interval forecasts: coverage and the Winkler (interval) score.

This module needs numpy only.
"""

from __future__ import annotations

import numpy as np

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
