"""Baselines a forecast must beat: naive + volatility-scaled conformal intervals, and GARCH(1,1).

Both walk forward over a close price series and give, for every forecast origin ("as-of" day
``t``), the next session's forecast made from closes up to ``t`` only: a row never changes when
later prices do. Returns are daily log returns ``r_t = log(C_t / C_{t-1})``; an interval for the
next close is ``C_t * exp(lower return) .. C_t * exp(upper return)``.

- **Naive + volatility**: the point forecast is today's close (the random walk); the interval is
  ``C_t * exp(-/+ q_t * sigma_t)`` with ``sigma_t`` the sample standard deviation of the last 20
  returns (by default) and ``q_t`` the split-conformal quantile of the trailing realized scores
  ``|r_s| / sigma_{s-1}``. No parameter is fitted.
- **GARCH(1,1)** (Bollerslev, "Generalized Autoregressive Conditional Heteroskedasticity",
  J. Econometrics 31 (1986) 307-327) with a constant mean and Student-t innovations, refitted on a
  trailing window every few weeks: the baseline a quant reaches for. Optionally **GJR-GARCH(1,1)**
  (Glosten, Jagannathan and Runkle, "On the relation between the expected value and the
  volatility of the nominal excess return on stocks", J. Finance 48(5) (1993) 1779-1801), whose
  variance reacts more to a fall than to a rise (the leverage effect). Both use the ``arch``
  package (a dependency of the product: the GARCH-family contenders).

Output frames are indexed by the as-of date (``as_of``) with columns ``base_close,
predicted_close, lower_80, upper_80, lower_95, upper_95, volatility, variance`` (one lower/upper
pair per level; ``volatility`` is the daily log-return standard deviation forecast for the next
session, ``variance`` its square as the method computes it, for variance losses such as
``forecasting.volatility.qlike``).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecasting.conformal import conformal_rank, minimum_scores

logger = logging.getLogger(__name__)

# As in forecasting.forecast: a volatility below 0.01% a day only happens on degenerate data
# (a price that did not move for weeks); the floor keeps scores finite.
VOLATILITY_FLOOR = 1e-4
# garch_forecasts' volatility models: arch's asymmetric order `o` of each.
GARCH_KINDS = {"garch": 0, "gjr": 1}


def interval_columns(level: float) -> tuple[str, str]:
    """The lower and upper column names for ``level``: ``("lower_95", "upper_95")`` for 0.95.

    Parameters
    ----------
    level : float
        Nominal coverage in (0, 1) that is a whole percentage.

    Returns
    -------
    tuple of str
        The two column names.
    """
    percent = round(level * 100)
    if not (0.0 < level < 1.0 and math.isclose(level * 100, percent)):
        raise ValueError(f"level must be a whole percentage in (0, 1), e.g. 0.95; got {level!r}")
    return f"lower_{percent}", f"upper_{percent}"


def _log_returns(close: pd.Series) -> np.ndarray:
    """``log(C_t / C_{t-1})`` for t = 1 .. N-1, after checking the series."""
    if not isinstance(close, pd.Series) or not isinstance(close.index, pd.DatetimeIndex):
        raise ValueError("close must be a pandas Series on a DatetimeIndex of trading days")
    if not (close.index.is_monotonic_increasing and close.index.is_unique):
        raise ValueError("close's dates must be sorted and unique")
    values = close.to_numpy(dtype="float64")
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise ValueError("close must hold finite, positive prices")
    return np.diff(np.log(values))


def _frame(
    close: pd.Series,
    rows: np.ndarray,
    center: np.ndarray,
    bounds: dict[float, tuple[np.ndarray, np.ndarray]],
    volatility: np.ndarray,
    variance: np.ndarray,
) -> pd.DataFrame:
    """The output frame for as-of positions ``rows``; ``center`` and bounds are log returns."""
    base = close.to_numpy(dtype="float64")[rows]
    columns: dict[str, np.ndarray] = {
        "base_close": base,
        "predicted_close": base * np.exp(center),
    }
    for level, (lower, upper) in bounds.items():
        lower_name, upper_name = interval_columns(level)
        columns[lower_name] = base * np.exp(lower)
        columns[upper_name] = base * np.exp(upper)
    columns["volatility"] = volatility
    columns["variance"] = variance
    return pd.DataFrame(columns, index=close.index[rows].rename("as_of"))


def naive_volatility_forecasts(
    close: pd.Series,
    *,
    levels: Sequence[float] = (0.80, 0.95),
    volatility_window: int = 20,
    calibration_window: int = 250,
) -> pd.DataFrame:
    """Naive next-close forecasts with volatility-scaled split-conformal intervals.

    For as-of day ``t``: ``sigma_t`` is the sample standard deviation (``ddof=1``) of the last
    ``volatility_window`` daily log returns up to ``t`` (floored at :data:`VOLATILITY_FLOOR`);
    the realized score of day ``s`` is ``|r_s| / sigma_{s-1}``; ``q_t`` is the conformal quantile
    (:func:`forecasting.conformal.conformal_quantile`) of the ``calibration_window`` scores with
    ``s <= t``. The forecast of the next close is ``C_t`` and its interval
    ``C_t * exp(-/+ q_t * sigma_t)``.

    Parameters
    ----------
    close : pandas.Series
        Closes on a sorted ``DatetimeIndex`` of trading days.
    levels : sequence of float, default (0.80, 0.95)
        Interval coverages, whole percentages.
    volatility_window : int, default 20
        Returns per volatility estimate.
    calibration_window : int, default 250
        Scores per quantile; must hold enough scores for a finite quantile at every level.

    Returns
    -------
    pandas.DataFrame
        One row per as-of day with a full calibration window (the first is the close at position
        ``volatility_window + calibration_window``), indexed by ``as_of``, columns
        ``base_close, predicted_close, lower_*, upper_*, volatility, variance`` (``volatility
        ** 2``). Empty if the series is too short.
    """
    if volatility_window < 2:
        raise ValueError(f"volatility_window must be at least 2, got {volatility_window!r}")
    for level in levels:
        interval_columns(level)
        if calibration_window < minimum_scores(level):
            raise ValueError(
                f"calibration_window={calibration_window} is too small for a finite {level:.0%} "
                f"quantile: it needs at least {minimum_scores(level)} scores"
            )
    ranks = {level: conformal_rank(calibration_window, level) for level in levels}
    returns = _log_returns(close)
    # sigma[j] is known at the close of return j (close position j + 1).
    sigma = pd.Series(returns).rolling(volatility_window).std().to_numpy()
    sigma = np.maximum(sigma, VOLATILITY_FLOOR)  # NaN stays NaN
    first_score = volatility_window  # score j needs sigma[j - 1], defined from j - 1 = w - 1
    scores = np.abs(returns[first_score:]) / sigma[first_score - 1 : -1]
    if len(scores) >= calibration_window:
        windows = np.lib.stride_tricks.sliding_window_view(scores, calibration_window)
    else:  # too short a history: no row
        windows = np.empty((0, calibration_window))
    ordered = np.partition(windows, sorted({rank - 1 for rank in ranks.values()}), axis=1)
    # Row k of `windows` ends at score (and return) index j = first_score + k + window - 1.
    last_return = np.arange(len(windows)) + first_score + calibration_window - 1
    volatility = sigma[last_return]
    bounds = {}
    for level, rank in ranks.items():
        half_width = ordered[:, rank - 1] * volatility
        bounds[level] = (-half_width, half_width)
    return _frame(close, last_return + 1, np.zeros(len(windows)), bounds, volatility, volatility**2)


def garch_forecasts(
    close: pd.Series,
    *,
    start: dt.date | None = None,
    levels: Sequence[float] = (0.80, 0.95),
    window: int = 1000,
    refit_every: int = 20,
    dist: str = "t",
    kind: str = "garch",
    anchor: int | None = None,
) -> pd.DataFrame:
    """Walk-forward GARCH(1,1) or GJR-GARCH(1,1) next-close forecasts and intervals.

    On a refit day ``t`` a constant-mean GARCH(1,1) is fitted (maximum likelihood, ``arch``) to
    ``100 *`` the last ``window`` log returns up to ``t``. On that day and the next
    ``refit_every - 1`` sessions, the fitted parameters are applied to the data up to each day::

        sigma2_{t+1} = omega + a * (r_t - mu)^2 + b * sigma2_t

    or, for ``kind="gjr"``, with ``e_t = r_t - mu``::

        sigma2_{t+1} = omega + (a + g * [e_t < 0]) * e_t^2 + b * sigma2_t

    and the next return is forecast as ``mu + sigma_{t+1} * z`` with ``z`` the innovation
    distribution's (unit-variance) quantiles. So the forecast is ``C_t * exp(mu / 100)`` and the
    ``p`` interval ``C_t * exp((mu + sigma_{t+1} * z_{(1-p)/2}) / 100) .. (... z_{(1+p)/2})``.

    Parameters
    ----------
    close : pandas.Series
        Closes on a sorted ``DatetimeIndex`` of trading days.
    start : datetime.date, optional
        First as-of day wanted; the earliest possible if omitted. Days with fewer than ``window``
        returns up to them are left out, as the naive baseline leaves out days without history.
    levels : sequence of float, default (0.80, 0.95)
        Interval coverages, whole percentages.
    window : int, default 1000
        Returns per fit (about four years).
    refit_every : int, default 20
        Sessions between refits (about a month).
    dist : str, default "t"
        Innovation distribution, as ``arch.arch_model`` names it: ``"normal"``, ``"t"``,
        ``"skewt"``, ``"ged"``.
    kind : str, default "garch"
        ``"garch"`` (symmetric) or ``"gjr"`` (GJR-GARCH: arch's ``o=1``; the leverage ``g`` is
        the fit's ``gamma[1]``).
    anchor : int, optional
        Refit on the as-of positions ``anchor + k * refit_every`` of ``close`` (positions counted
        from its first bar), whatever ``start`` is: a day's forecast is then the same whichever
        range it is computed in (the product computes the newest weeks every day). By default
        the refits start at ``start``.

    Returns
    -------
    pandas.DataFrame
        One row per as-of day from ``start``, indexed by ``as_of``, columns ``base_close,
        predicted_close, lower_*, upper_*, volatility`` (``sigma_{t+1} / 100``), ``variance``
        (``sigma2_{t+1} / 100^2``) and ``df`` (the Student-t's fitted degrees of freedom; NaN
        for other distributions).

    Raises
    ------
    ImportError
        If the ``arch`` package is not installed.
    """
    try:
        from arch import arch_model
    except ImportError as error:
        raise ImportError("garch_forecasts needs the 'arch' package: pip install arch") from error
    for level in levels:
        interval_columns(level)
    if window < 100:
        raise ValueError(f"window must be at least 100 returns for a GARCH fit, got {window!r}")
    if refit_every < 1:
        raise ValueError(f"refit_every must be at least 1, got {refit_every!r}")
    if kind not in GARCH_KINDS:
        raise ValueError(f"kind must be one of {tuple(GARCH_KINDS)}, got {kind!r}")
    returns = 100.0 * _log_returns(close)
    # As-of position p has returns[:p]; it needs `window` of them.
    first = (
        window if start is None else max(window, int(close.index.searchsorted(pd.Timestamp(start))))
    )
    blocks = _refit_blocks(first, len(close), window, refit_every, anchor)
    first = blocks[0][1] if blocks else len(close)
    positions = np.arange(first, len(close))
    center, variance = np.empty(len(positions)), np.empty(len(positions))
    df = np.full(len(positions), np.nan)
    z = {level: np.empty((len(positions), 2)) for level in levels}
    for refit_day, low, high in blocks:
        rows = slice(low - first, high - first)  # as-of positions low .. high - 1
        # Fitted on the `window` returns before the refit day only; later ones are just filtered.
        data = returns[refit_day - window : high - 1]
        model = arch_model(
            data, mean="Constant", vol="GARCH", p=1, o=GARCH_KINDS[kind], q=1, dist=dist,
            rescale=False,
        )  # fmt: skip
        params = _fitted(kind, dist, data[:window].tobytes(), str(close.index[refit_day].date()))
        # The fixed parameters filter the later returns exactly as the fit's own result does.
        fit = model.fix(params, last_obs=window)
        forecast = fit.forecast(horizon=1, start=window - 1, reindex=False)
        skip = low - refit_day
        center[rows] = forecast.mean.to_numpy()[skip:, 0]
        variance[rows] = forecast.variance.to_numpy()[skip:, 0]
        shape = params[len(params) - model.distribution.num_params :]
        if dist == "t":
            df[rows] = shape[0]
        for level in levels:
            tails = [(1.0 - level) / 2.0, (1.0 + level) / 2.0]
            z[level][rows] = model.distribution.ppf(tails, shape)
    sigma = np.sqrt(variance)
    bounds = {
        level: (
            (center + sigma * quantiles[:, 0]) / 100.0,
            (center + sigma * quantiles[:, 1]) / 100.0,
        )
        for level, quantiles in z.items()
    }
    frame = _frame(close, positions, center / 100.0, bounds, sigma / 100.0, variance / 100.0**2)
    frame["df"] = df
    return frame


def _refit_blocks(
    first: int, end: int, window: int, refit_every: int, anchor: int | None
) -> list[tuple[int, int, int]]:
    """``(refit day, first as-of, end as-of)`` of each fit: the as-of positions ``first .. end-1``
    in blocks of ``refit_every``, each forecast by the fit of its block's refit day."""
    if anchor is None:
        return [(low, low, min(low + refit_every, end)) for low in range(first, end, refit_every)]
    refit = first - (first - anchor) % refit_every
    if refit < window:
        refit += refit_every  # the first anchored refit day with `window` returns before it
        first = max(first, refit)
    blocks = []
    while refit < end:
        blocks.append((refit, max(refit, first), min(refit + refit_every, end)))
        refit += refit_every
    return blocks


@functools.lru_cache(maxsize=512)
def _fitted(kind: str, dist: str, returns: bytes, refit_day: str) -> np.ndarray:
    """The maximum-likelihood parameters of one fit (``returns``: float64 bytes, in percent).

    Cached per process: a backfill's sessions share a refit day's fit (the product refits on
    anchored days, so each is fitted once, not once a session); the same bytes give the same
    parameters, so a cached and a fresh fit forecast alike.
    """
    from arch import arch_model

    model = arch_model(
        np.frombuffer(returns), mean="Constant", vol="GARCH", p=1, o=GARCH_KINDS[kind], q=1,
        dist=dist, rescale=False,
    )  # fmt: skip
    fit = model.fit(disp="off", show_warning=False)
    if fit.convergence_flag != 0:
        logger.warning(
            "%s fit as of %s did not converge (flag %d); its parameters are used anyway",
            kind.upper(), refit_day, fit.convergence_flag,
        )  # fmt: skip
    return fit.params.to_numpy()
