"""Conformal quantiles: split conformal, and adaptive conformal inference (ACI) over time.

Split conformal (Vovk, Gammerman & Shafer, *Algorithmic Learning in a Random World*, 2005;
Lei et al., "Distribution-Free Predictive Inference for Regression", JASA 2018): given ``n``
non-conformity scores of held-out samples, the ``ceil((n + 1) p)``-th smallest of them bounds the
score of a new, exchangeable sample with probability at least ``p``.

Adaptive conformal inference (Gibbs & Candès, "Adaptive Conformal Inference Under Distribution
Shift", NeurIPS 2021) keeps that quantile honest when the scores are *not* exchangeable (markets
change regime): the miscoverage level used on day ``t`` is nudged after every realized day,

    alpha_{t+1} = alpha_t + gamma * (alpha - err_t),    err_t = 1 if day t was missed else 0,

so a run of misses lowers ``alpha_t`` (wider intervals) and a run of hits raises it. Whatever the
sequence of scores, the long-run miss rate then tends to the target ``alpha`` (their Proposition
4.1 bounds the gap by ``(max(alpha_1, 1 - alpha_1) + gamma) / (gamma T)`` after ``T`` days).

This module needs numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Keeps e.g. (19 + 1) * 0.95 = 19.000000000000004 from rounding up to rank 20.
_RANK_TOLERANCE = 1e-9


def conformal_rank(n: int, level: float) -> int:
    """The rank ``ceil((n + 1) * level)`` of the split-conformal quantile among ``n`` scores.

    Parameters
    ----------
    n : int
        Number of calibration scores.
    level : float
        Nominal coverage in (0, 1).

    Returns
    -------
    int
        The 1-based rank; greater than ``n`` when ``n`` is too small for ``level``.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    return math.ceil((n + 1) * level - _RANK_TOLERANCE)


def minimum_scores(level: float) -> int:
    """The fewest scores whose split-conformal quantile at ``level`` is finite.

    Parameters
    ----------
    level : float
        Nominal coverage in (0, 1).

    Returns
    -------
    int
        The smallest ``n`` with ``ceil((n + 1) * level) <= n``, i.e. ``ceil(level / (1 - level))``:
        4 for 80%, 19 for 95%.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    return math.ceil(level / (1.0 - level) - _RANK_TOLERANCE)


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
    ordered = np.sort(np.asarray(scores, dtype="float64"))
    rank = conformal_rank(len(ordered), level)
    return float(ordered[rank - 1]) if rank <= len(ordered) else math.inf


def aci_update(alpha_t: float, *, target_alpha: float, gamma: float, missed: bool) -> float:
    """One step of adaptive conformal inference: ``alpha_t + gamma * (target_alpha - missed)``.

    Parameters
    ----------
    alpha_t : float
        The miscoverage level used on the day just realized.
    target_alpha : float
        The nominal miscoverage, ``1 - level`` (0.05 for a 95% interval).
    gamma : float
        Step size, at least 0 (Gibbs & Candès use 0.005; 0 keeps ``alpha_t`` fixed).
    missed : bool
        Whether the realized value fell outside that day's interval.

    Returns
    -------
    float
        The level for the next day. It may leave [0, 1]: that is part of the method.

    References
    ----------
    Gibbs & Candès, "Adaptive Conformal Inference Under Distribution Shift", NeurIPS 2021, eq. (2).
    """
    if gamma < 0.0:
        raise ValueError(f"gamma must be at least 0, got {gamma!r}")
    return alpha_t + gamma * (target_alpha - float(missed))


@dataclass(frozen=True, eq=False)
class AdaptiveQuantiles:
    """The day-by-day result of :func:`adaptive_quantiles`, aligned with the scores.

    ``quantile[t]`` and ``alpha[t]`` were fixed before score ``t`` was seen; ``missed[t]`` says
    whether score ``t`` exceeded ``quantile[t]``. ``next_quantile`` and ``next_alpha`` are for the
    day after the last score (tomorrow's interval).
    """

    quantile: np.ndarray
    alpha: np.ndarray
    missed: np.ndarray
    next_quantile: float
    next_alpha: float


def _window_quantile(window: np.ndarray, alpha: float) -> float:
    """The conformal quantile at level ``1 - alpha``, bounded as :func:`adaptive_quantiles` says."""
    if alpha >= 1.0:
        return 0.0
    if len(window) == 0:
        return math.inf
    ordered = np.sort(window)
    if alpha <= 0.0:
        return float(ordered[-1])
    rank = conformal_rank(len(ordered), 1.0 - alpha)
    return float(ordered[min(rank, len(ordered)) - 1])


def adaptive_quantiles(
    scores: np.ndarray,
    *,
    level: float,
    gamma: float = 0.005,
    window: int = 250,
    warmup: np.ndarray | None = None,
    alpha_start: float | None = None,
) -> AdaptiveQuantiles:
    """Walk adaptive conformal inference over realized non-conformity scores.

    For day ``t`` the quantile ``q_t`` is the split-conformal quantile at level ``1 - alpha_t`` of
    the last ``window`` scores strictly before ``t`` (the ``warmup`` scores, if given, come first);
    then ``missed_t = s_t > q_t`` and ``alpha_{t+1} = aci_update(alpha_t, ...)``. Nothing on or
    after day ``t`` influences ``q_t``.

    Parameters
    ----------
    scores : numpy.ndarray
        Realized scores ``s_0 .. s_{T-1}`` in time order, e.g. ``|y - mu| / sigma``.
    level : float
        Nominal coverage in (0, 1); the target miscoverage is ``1 - level``.
    gamma : float, default 0.005
        ACI step size (Gibbs & Candès's choice); 0 gives rolling split conformal.
    window : int, default 250
        How many of the most recent scores calibrate each day.
    warmup : numpy.ndarray, optional
        Scores known before day 0 (e.g. held-out validation scores), oldest first.
    alpha_start : float, optional
        ``alpha_0``; ``1 - level`` if omitted.

    Returns
    -------
    AdaptiveQuantiles
        ``quantile``, ``alpha`` and ``missed`` per day, and ``next_quantile`` / ``next_alpha``.

    Notes
    -----
    Three deliberate bounds, where the paper's interval would be unbounded or empty:

    - ``alpha_t <= 0`` (the paper: an infinite interval) gives the largest score in the window,
      so that a served interval stays finite. The day can then still be missed, which pushes
      ``alpha_t`` further down; it comes back up as days are covered.
    - Too few scores for a finite quantile at ``1 - alpha_t`` (``ceil((n + 1)(1 - alpha_t)) > n``)
      also gives the largest score available.
    - ``alpha_t >= 1`` gives 0 (a zero-width interval: the point forecast alone).

    Only with no score at all (no warmup, day 0) is the quantile ``inf``; that day counts as
    covered.
    """
    values = _finite_1d(scores, "scores")
    history = values if warmup is None else np.concatenate([_finite_1d(warmup, "warmup"), values])
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window!r}")
    if gamma < 0.0:
        raise ValueError(f"gamma must be at least 0, got {gamma!r}")
    target_alpha = 1.0 - level
    alpha_t = target_alpha if alpha_start is None else float(alpha_start)
    offset = len(history) - len(values)
    quantile = np.empty(len(values))
    alpha = np.empty(len(values))
    missed = np.zeros(len(values), dtype=bool)
    for t, score in enumerate(values):
        end = offset + t
        alpha[t] = alpha_t
        quantile[t] = _window_quantile(history[max(0, end - window) : end], alpha_t)
        missed[t] = score > quantile[t]
        alpha_t = aci_update(alpha_t, target_alpha=target_alpha, gamma=gamma, missed=missed[t])
    end = len(history)
    return AdaptiveQuantiles(
        quantile=quantile,
        alpha=alpha,
        missed=missed,
        next_quantile=_window_quantile(history[max(0, end - window) : end], alpha_t),
        next_alpha=alpha_t,
    )


def _finite_1d(values: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype="float64")
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return array
