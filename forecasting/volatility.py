"""Daily variance estimators from OHLC bars, their HAR aggregates, and the QLIKE loss.

With ``o, h, l, c`` the logs of a bar's open, high, low and close and ``c_{t-1}`` the previous
close's, every estimator below is a *variance* of daily log returns (not a volatility):

- **close-to-close**: ``(c_t - c_{t-1})^2``, the classical one-observation estimator.
- **overnight**: ``(o_t - c_{t-1})^2``, the squared close-to-open gap, which no intraday range
  sees (earnings, news after the close).
- **Parkinson** (M. Parkinson, "The extreme value method for estimating the variance of the
  rate of return", J. Business 53(1) (1980) 61-65): ``(h - l)^2 / (4 log 2)``.
- **Garman-Klass** (M. B. Garman and M. J. Klass, "On the estimation of security price
  volatilities from historical data", J. Business 53(1) (1980) 67-78), their practical
  ``sigma_5``: ``0.5 (h - l)^2 - (2 log 2 - 1) (c - o)^2``.
- **Rogers-Satchell** (L. C. G. Rogers and S. E. Satchell, "Estimating variance from high, low
  and closing prices", Annals of Applied Probability 1(4) (1991) 504-512), unbiased whatever the
  drift: ``(h - o)(h - c) + (l - o)(l - c)``.
- **Yang-Zhang** (D. Yang and Q. Zhang, "Drift independent volatility estimation based on high,
  low, open, and close prices", J. Business 73(3) (2000) 477-491), over ``n`` sessions:
  ``V_O + k V_C + (1 - k) V_RS`` with ``V_O`` and ``V_C`` the sample variances (``ddof=1``) of
  the overnight ``o_t - c_{t-1}`` and open-to-close ``c_t - o_t`` log returns, ``V_RS`` the mean
  Rogers-Satchell, and ``k = 0.34 / (1.34 + (n + 1) / (n - 1))``.

All but Yang-Zhang use one bar each; Parkinson, Garman-Klass and Rogers-Satchell see the trading
session only (open to close), so they estimate the intraday part of the daily variance and the
overnight term is the rest. Under a driftless Brownian motion a range estimator is several times
as efficient as the squared return (Garman and Klass report about 5.2 for Parkinson and 7.4 for
theirs); P. Molnar, "High-low range in GARCH models of stock return volatility", Applied
Economics 48(51) (2016) 4977-4991, finds that the range improves GARCH's volatility forecasts of
real stocks. Jumps and heavy tails shrink the gain on real bars: on the bundled NVDA sample
(6,555 sessions) Garman-Klass plus the squared overnight gap, which estimates the same
close-to-close variance as the squared return (their means differ by 1%), has 1.9 times less
variance than it, and Garman-Klass 2.3 times less than the squared open-to-close return
(``tests/forecasting/test_volatility.py`` checks both).

**HAR** (F. Corsi, "A simple approximate long-memory model of realized volatility", J. Financial
Econometrics 7(2) (2009) 174-196): the daily, weekly and monthly components of a measure are its
trailing means over 1, 5 and 22 sessions, each ending on (and including) the day.

**Leverage**: ``min(r_t, 0)`` with ``r_t`` the close-to-close log return, the negative part that
F. Corsi and R. Reno ("Discrete-time volatility forecasting with persistent leverage effect and
the link with continuous-time volatility modeling", J. Business & Economic Statistics 30(3)
(2012) 368-380) add to the HAR.

No value at day ``t`` uses a bar after ``t``. **QLIKE** (A. J. Patton, "Volatility forecast
comparison using imperfect volatility proxies", J. Econometrics 160(1) (2011) 246-256) scores a
variance forecast against a noisy proxy of the realized variance.

This module needs numpy and pandas only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

PRICE_COLUMNS = ("open", "high", "low", "close")
# (0.01% a day)^2, the square of forecasting.features.VOLATILITY_FLOOR: the log of a variance is
# taken of at least this much, so that a bar with no range (a halted or untraded session, or a
# price quoted in ticks too coarse to move) or a zero return gives log(1e-8) = -18.4, not -inf.
VARIANCE_FLOOR = 1e-8
# The per-day measures range_features can aggregate into HAR components.
HAR_MEASURES = (
    "parkinson",
    "garman_klass",
    "rogers_satchell",
    "overnight",
    "close_to_close",
)


def _log_prices(bars: pd.DataFrame) -> dict[str, pd.Series]:
    """The logs of ``open, high, low, close`` and of the previous close, after checking them."""
    missing = [name for name in PRICE_COLUMNS if name not in bars.columns]
    if missing:
        raise ValueError(f"bars lack the column(s) {missing}; expected {list(PRICE_COLUMNS)}")
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise ValueError("bars must be indexed by a DatetimeIndex of trading days")
    if not (bars.index.is_monotonic_increasing and bars.index.is_unique):
        raise ValueError("bars' dates must be sorted and unique")
    prices = bars[list(PRICE_COLUMNS)].astype("float64")
    values = prices.to_numpy()
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise ValueError("bars must hold finite, positive open, high, low and close prices")
    logs = {name: np.log(prices[name]) for name in PRICE_COLUMNS}
    logs["previous_close"] = logs["close"].shift(1)
    return logs


def parkinson(bars: pd.DataFrame) -> pd.Series:
    """Parkinson's (1980) range variance of each bar: ``log(H / L)^2 / (4 log 2)``.

    Parameters
    ----------
    bars : pandas.DataFrame
        Daily bars with ``open, high, low, close`` on a sorted ``DatetimeIndex``.

    Returns
    -------
    pandas.Series
        One variance per bar (0 for a bar with no range), named ``parkinson``.
    """
    logs = _log_prices(bars)
    return ((logs["high"] - logs["low"]) ** 2 / (4.0 * math.log(2.0))).rename("parkinson")


def garman_klass(bars: pd.DataFrame) -> pd.Series:
    """Garman and Klass's (1980) variance of each bar.

    ``0.5 log(H / L)^2 - (2 log 2 - 1) log(C / O)^2``; at least ``0.11 log(H / L)^2`` whenever
    the open and close lie within ``[L, H]``.

    Parameters
    ----------
    bars : pandas.DataFrame
        Daily bars with ``open, high, low, close`` on a sorted ``DatetimeIndex``.

    Returns
    -------
    pandas.Series
        One variance per bar, named ``garman_klass``.
    """
    logs = _log_prices(bars)
    high_low = logs["high"] - logs["low"]
    close_open = logs["close"] - logs["open"]
    variance = 0.5 * high_low**2 - (2.0 * math.log(2.0) - 1.0) * close_open**2
    return variance.rename("garman_klass")


def rogers_satchell(bars: pd.DataFrame) -> pd.Series:
    """Rogers and Satchell's (1991) drift-free variance of each bar.

    ``log(H / O) log(H / C) + log(L / O) log(L / C)``, non-negative whenever the open and close
    lie within ``[L, H]``.

    Parameters
    ----------
    bars : pandas.DataFrame
        Daily bars with ``open, high, low, close`` on a sorted ``DatetimeIndex``.

    Returns
    -------
    pandas.Series
        One variance per bar, named ``rogers_satchell``.
    """
    logs = _log_prices(bars)
    return _rogers_satchell(logs).rename("rogers_satchell")


def _rogers_satchell(logs: dict[str, pd.Series]) -> pd.Series:
    high, low, open_, close = logs["high"], logs["low"], logs["open"], logs["close"]
    return (high - open_) * (high - close) + (low - open_) * (low - close)


def overnight(bars: pd.DataFrame) -> pd.Series:
    """The squared overnight log return ``log(O_t / C_{t-1})^2`` of each bar.

    Parameters
    ----------
    bars : pandas.DataFrame
        Daily bars with ``open, high, low, close`` on a sorted ``DatetimeIndex``.

    Returns
    -------
    pandas.Series
        One value per bar, NaN on the first (no previous close), named ``overnight``.
    """
    logs = _log_prices(bars)
    return ((logs["open"] - logs["previous_close"]) ** 2).rename("overnight")


def close_to_close(bars: pd.DataFrame) -> pd.Series:
    """The squared close-to-close log return ``log(C_t / C_{t-1})^2`` of each bar.

    Parameters
    ----------
    bars : pandas.DataFrame
        Daily bars with ``open, high, low, close`` on a sorted ``DatetimeIndex``.

    Returns
    -------
    pandas.Series
        One value per bar, NaN on the first (no previous close), named ``close_to_close``.
    """
    logs = _log_prices(bars)
    return ((logs["close"] - logs["previous_close"]) ** 2).rename("close_to_close")


def yang_zhang(bars: pd.DataFrame, window: int = 22) -> pd.Series:
    """Yang and Zhang's (2000) variance over the last ``window`` sessions up to each bar.

    ``V_O + k V_C + (1 - k) V_RS``, ``k = 0.34 / (1.34 + (n + 1) / (n - 1))`` with
    ``n = window``: ``V_O`` and ``V_C`` are the sample variances (``ddof=1``) of the overnight
    ``log(O_t / C_{t-1})`` and open-to-close ``log(C_t / O_t)`` returns of those sessions,
    ``V_RS`` the mean of their Rogers-Satchell variances.

    Parameters
    ----------
    bars : pandas.DataFrame
        Daily bars with ``open, high, low, close`` on a sorted ``DatetimeIndex``.
    window : int, default 22
        Sessions per estimate, at least 2.

    Returns
    -------
    pandas.Series
        One variance per bar, NaN until ``window`` overnight returns exist (the first
        ``window`` bars), named ``yang_zhang``.
    """
    if window < 2:
        raise ValueError(f"window must be at least 2 sessions, got {window!r}")
    logs = _log_prices(bars)
    k = 0.34 / (1.34 + (window + 1) / (window - 1))
    overnight_variance = (logs["open"] - logs["previous_close"]).rolling(window).var()
    open_close_variance = (logs["close"] - logs["open"]).rolling(window).var()
    rogers_satchell_mean = _rogers_satchell(logs).rolling(window).mean()
    # The first bar has no overnight return, so V_O (and the sum) is NaN until bar `window`.
    variance = overnight_variance + k * open_close_variance + (1.0 - k) * rogers_satchell_mean
    return variance.rename("yang_zhang")


def har_components(measure: pd.Series, horizons: Sequence[int] = (1, 5, 22)) -> pd.DataFrame:
    """Corsi's (2009) HAR components: trailing means of ``measure`` over each horizon.

    Parameters
    ----------
    measure : pandas.Series
        A per-day variance measure (e.g. :func:`garman_klass`), oldest first.
    horizons : sequence of int, default (1, 5, 22)
        Sessions per mean: a day, a week and a month.

    Returns
    -------
    pandas.DataFrame
        Column ``har_{h}`` per horizon: the mean of ``measure`` over the ``h`` days ending on
        (and including) each day; NaN unless all ``h`` are known.
    """
    if not horizons or any(horizon < 1 for horizon in horizons):
        raise ValueError(f"horizons must be positive session counts, got {tuple(horizons)!r}")
    if len(set(horizons)) != len(horizons):
        raise ValueError(f"horizons must be distinct, got {tuple(horizons)!r}")
    return pd.DataFrame(
        {f"har_{horizon}": measure.rolling(horizon).mean() for horizon in horizons},
        index=measure.index,
    )


def log_variance(
    variance: pd.Series | pd.DataFrame, floor: float = VARIANCE_FLOOR
) -> pd.Series | pd.DataFrame:
    """``log(max(variance, floor))``, NaN kept: the variance floor keeps the log finite.

    Parameters
    ----------
    variance : pandas.Series or pandas.DataFrame
        Variances (a negative one, from a bar whose open or close lies outside its range, is
        floored too).
    floor : float, default :data:`VARIANCE_FLOOR`
        The smallest variance whose log is taken; positive.

    Returns
    -------
    pandas.Series or pandas.DataFrame
        The same shape and labels.
    """
    if not floor > 0:
        raise ValueError(f"floor must be positive, got {floor!r}")
    return np.log(variance.clip(lower=floor))


def range_features(
    bars: pd.DataFrame,
    horizons: Sequence[int] = (1, 5, 22),
    *,
    har_measure: str = "garman_klass",
    yang_zhang_window: int = 22,
    floor: float = VARIANCE_FLOOR,
) -> pd.DataFrame:
    """Log-variance features of each day from its bar and the bars before it.

    Parameters
    ----------
    bars : pandas.DataFrame
        Daily bars with ``open, high, low, close`` (other columns ignored) on a sorted
        ``DatetimeIndex``, like ``forecasting.features.make_features`` reads.
    horizons : sequence of int, default (1, 5, 22)
        HAR horizons in sessions.
    har_measure : str, default "garman_klass"
        The per-day measure the HAR components average, one of :data:`HAR_MEASURES`.
    yang_zhang_window : int, default 22
        Sessions per Yang-Zhang estimate.
    floor : float, default :data:`VARIANCE_FLOOR`
        Every log is of ``max(variance, floor)``.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``bars``, columns ``log_parkinson, log_garman_klass, log_rogers_satchell,
        log_yang_zhang, log_overnight, log_close_to_close`` (the logs of the estimators of this
        module), ``log_har_{h}`` per horizon (the log of the mean of ``har_measure`` over the
        ``h`` sessions up to the day) and ``negative_return`` (``min(log(C_t / C_{t-1}), 0)``,
        not a log). NaN where a value needs bars before the first: the first row for the
        overnight, close-to-close and leverage terms, the first ``yang_zhang_window`` for
        Yang-Zhang, the first ``h - 1`` for ``log_har_{h}``.
    """
    if har_measure not in HAR_MEASURES:
        raise ValueError(f"har_measure must be one of {HAR_MEASURES}, got {har_measure!r}")
    logs = _log_prices(bars)
    estimates = {
        "parkinson": parkinson(bars),
        "garman_klass": garman_klass(bars),
        "rogers_satchell": rogers_satchell(bars),
        "yang_zhang": yang_zhang(bars, yang_zhang_window),
        "overnight": overnight(bars),
        "close_to_close": close_to_close(bars),
    }
    features = {f"log_{name}": log_variance(value, floor) for name, value in estimates.items()}
    har = har_components(estimates[har_measure], horizons)
    features.update({f"log_{name}": log_variance(har[name], floor) for name in har.columns})
    features["negative_return"] = (logs["close"] - logs["previous_close"]).clip(upper=0.0)
    return pd.DataFrame(features, index=bars.index)


def qlike(
    proxy: npt.ArrayLike, forecast: npt.ArrayLike, *, proxy_floor: float = VARIANCE_FLOOR
) -> np.ndarray:
    """Patton's (2011) QLIKE loss of variance forecasts: ``p / f - log(p / f) - 1``.

    Zero when the forecast ``f`` equals the proxy ``p``, positive otherwise, and heavier for an
    under-forecast than for an over-forecast by the same factor. Its expectation ranks forecasts
    as the true variance would, whatever the proxy's (unbiased) noise: it is robust in Patton's
    sense, as the mean squared error of variances is, but it does not grow with the variance's
    level.

    Parameters
    ----------
    proxy : array_like
        Realized variances (e.g. a squared return or :func:`garman_klass`), non-negative. A
        proxy below ``proxy_floor`` (a zero return) is taken as ``proxy_floor``, else its loss
        would be infinite. That changes ``-log p``, the same for every forecast of the day, and
        ``p / f`` by at most ``proxy_floor / f``, so two forecasts compare as before.
    forecast : array_like
        Forecast variances of the same days, positive and finite; broadcast with ``proxy``.
    proxy_floor : float, default :data:`VARIANCE_FLOOR`
        The smallest proxy used; positive.

    Returns
    -------
    numpy.ndarray
        The loss per day, NaN where the proxy or the forecast is NaN (missing); average with
        ``numpy.nanmean`` over the days both are known, or drop the same days for every method
        compared.

    Raises
    ------
    ValueError
        If a forecast is not positive or is infinite, or a proxy is negative.
    """
    if not proxy_floor > 0:
        raise ValueError(f"proxy_floor must be positive, got {proxy_floor!r}")
    proxy_values = np.asarray(proxy, dtype="float64")
    forecast_values = np.asarray(forecast, dtype="float64")
    # Comparisons with NaN are false, so a missing value passes the checks and stays NaN.
    if (forecast_values <= 0).any() or np.isinf(forecast_values).any():
        raise ValueError("forecast variances must be positive and finite")
    if (proxy_values < 0).any() or np.isinf(proxy_values).any():
        raise ValueError("proxy variances must be non-negative and finite")
    ratio = np.maximum(proxy_values, proxy_floor) / forecast_values  # NaN stays NaN
    return np.asarray(ratio - np.log(ratio) - 1.0)
