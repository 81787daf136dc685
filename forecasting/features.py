"""From a price frame to model inputs: scale-free features, windows, a chronological split.

Every input is a log ratio, so the model sees the same kind of numbers at $0.04 (1999) and at
$140 (2025). The target is the next session's log return of Close. Scaling statistics are fitted
on the training windows only; validation and test never influence them (the original blog fitted
its MinMax scaler on the whole series, a look-ahead leak).

This module needs numpy and pandas only, not TensorFlow.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.config import FeatureConfig
from forecasting.errors import InsufficientDataError

logger = logging.getLogger(__name__)

FEATURE_SOURCE_COLUMNS = ("open", "high", "low", "close", "volume")
FEATURE_NAMES = ("close_return", "open_gap", "high_range", "low_range", "volume_change")
# Each split must hold at least this many windows; 20 validation windows are also the fewest for
# which the 95% split-conformal quantile is finite (ceil((n + 1) * 0.95) <= n needs n >= 19).
MINIMUM_WINDOWS_PER_SPLIT = 20


@dataclass(frozen=True, eq=False)
class Split:
    """The windows of one chronological split, aligned sample by sample.

    ``x`` has shape (samples, sequence_length, features); ``y`` is the next session's log return
    of Close. ``as_of_dates`` are the windows' last days, ``target_dates`` the days forecast.
    """

    x: np.ndarray
    y: np.ndarray
    as_of_dates: pd.DatetimeIndex
    target_dates: pd.DatetimeIndex
    base_close: np.ndarray
    target_close: np.ndarray
    volatility: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True, eq=False)
class Scaling:
    """Per-feature and target statistics, fitted on the training split only (population std)."""

    feature_mean: np.ndarray
    feature_std: np.ndarray
    target_mean: float
    target_std: float


@dataclass(frozen=True, eq=False)
class PreparedData:
    """Everything the model and its evaluation need, built by :func:`prepare`."""

    config: FeatureConfig
    feature_names: tuple[str, ...]
    train: Split
    validation: Split
    test: Split
    scaling: Scaling
    x_next: np.ndarray
    next_as_of_date: dt.date
    next_base_close: float
    next_volatility: float
    first_date: dt.date
    last_date: dt.date

    @property
    def n_features(self) -> int:
        """How many features each day of a window carries."""
        return len(self.feature_names)


def _check_prices(prices: pd.DataFrame) -> None:
    missing = [name for name in FEATURE_SOURCE_COLUMNS if name not in prices.columns]
    if missing:
        raise ValueError(
            f"prices lack the column(s) {missing}; expected {list(FEATURE_SOURCE_COLUMNS)}"
        )
    if not isinstance(prices.index, pd.DatetimeIndex):
        raise ValueError("prices must be indexed by a DatetimeIndex of trading days")
    if not (prices.index.is_monotonic_increasing and prices.index.is_unique):
        raise ValueError("prices' dates must be sorted and unique")


def make_features(prices: pd.DataFrame) -> pd.DataFrame:
    """Scale-free daily features; the first bar, which has no previous close, is dropped.

    Parameters
    ----------
    prices : pandas.DataFrame
        Daily bars with ``open, high, low, close, volume`` on a sorted ``DatetimeIndex``.

    Returns
    -------
    pandas.DataFrame
        One row per bar from the second on, columns :data:`FEATURE_NAMES`:
        ``close_return = log(close / previous close)``, ``open_gap = log(open / previous close)``,
        ``high_range = log(high / close)``, ``low_range = log(low / close)`` and
        ``volume_change = log(volume / previous volume)``.
    """
    _check_prices(prices)
    close = prices["close"].astype("float64")
    previous_close = close.shift(1)
    # A zero volume on a trading day is a missing print, not a day without trades: carry the
    # last positive volume forward so that it reads as "no change" rather than a -inf spike.
    volume = prices["volume"].astype("float64").where(prices["volume"] > 0).ffill().bfill()
    features = pd.DataFrame(
        {
            "close_return": np.log(close / previous_close),
            "open_gap": np.log(prices["open"] / previous_close),
            "high_range": np.log(prices["high"] / close),
            "low_range": np.log(prices["low"] / close),
            "volume_change": np.log(volume / volume.shift(1)).fillna(0.0),
        },
        index=prices.index,
    )
    return features.iloc[1:]


def minimum_rows(config: FeatureConfig) -> int:
    """The fewest bars :func:`prepare` accepts with ``config``.

    Parameters
    ----------
    config : FeatureConfig
        Window length, split fractions and volatility window.

    Returns
    -------
    int
        Bars needed so that every split holds :data:`MINIMUM_WINDOWS_PER_SPLIT` windows.
    """
    samples = 3 * MINIMUM_WINDOWS_PER_SPLIT
    while min(_split_sizes(samples, config)) < MINIMUM_WINDOWS_PER_SPLIT:
        samples += 1
    return samples + 1 + max(config.sequence_length, config.volatility_window)


def _split_sizes(samples: int, config: FeatureConfig) -> tuple[int, int, int]:
    # The small epsilon keeps e.g. 0.7 * 10 = 6.9999999 from flooring to 6.
    n_test = math.floor(samples * config.test_fraction + 1e-9)
    n_validation = math.floor(samples * config.validation_fraction + 1e-9)
    return samples - n_test - n_validation, n_validation, n_test


def _windows(values: np.ndarray, ends: np.ndarray, length: int) -> np.ndarray:
    offsets = np.arange(-length + 1, 1)
    return values[ends[:, None] + offsets[None, :]]


def prepare(prices: pd.DataFrame, config: FeatureConfig | None = None) -> PreparedData:
    """Build the windows, the chronological split and the training-only scaling statistics.

    Parameters
    ----------
    prices : pandas.DataFrame
        Daily bars (see :func:`make_features`), oldest first.
    config : FeatureConfig, optional
        Window length, split fractions and volatility window; the defaults if omitted.

    Returns
    -------
    PreparedData
        Train, validation and test windows (test = the last ``test_fraction`` of them,
        validation just before), the scaling statistics of the training windows, and the
        window ``x_next`` that ends at the last bar, for the next session's forecast.

    Raises
    ------
    InsufficientDataError
        If there are fewer bars than :func:`minimum_rows` asks for.
    """
    config = config or FeatureConfig()
    _check_prices(prices)
    needed = minimum_rows(config)
    if len(prices) < needed:
        raise InsufficientDataError(
            f"{len(prices)} daily bars are too few: at least {needed} are needed for windows of "
            f"{config.sequence_length} days and {MINIMUM_WINDOWS_PER_SPLIT} windows per split; "
            "load a longer history (an earlier --start)"
        )
    features = make_features(prices)
    values = features.to_numpy(dtype="float64")
    if not np.isfinite(values).all():
        raise ValueError("features are not finite: prices hold missing or non-positive values")
    volatility = features["close_return"].rolling(config.volatility_window).std().to_numpy()
    close = prices["close"].to_numpy(dtype="float64")[1:]
    length = config.sequence_length
    # A window may end once both its days and its volatility exist, and needs a next bar.
    ends = np.arange(max(length, config.volatility_window) - 1, len(features) - 1)
    n_train, n_validation, _ = _split_sizes(len(ends), config)
    train_ends = ends[:n_train]
    validation_ends = ends[n_train : n_train + n_validation]
    test_ends = ends[n_train + n_validation :]

    def split(window_ends: np.ndarray) -> Split:
        return Split(
            x=_windows(values, window_ends, length).astype("float32"),
            y=values[window_ends + 1, 0].astype("float32"),
            as_of_dates=features.index[window_ends],
            target_dates=features.index[window_ends + 1],
            base_close=close[window_ends],
            target_close=close[window_ends + 1],
            volatility=volatility[window_ends],
        )

    # The rows that training windows cover, each counted once, and nothing after them.
    training_rows = values[train_ends[0] - length + 1 : train_ends[-1] + 1]
    training_targets = values[train_ends + 1, 0]
    scaling = Scaling(
        feature_mean=training_rows.mean(axis=0),
        feature_std=training_rows.std(axis=0),
        target_mean=float(training_targets.mean()),
        target_std=float(training_targets.std()),
    )
    last = len(features) - 1
    data = PreparedData(
        config=config,
        feature_names=FEATURE_NAMES,
        train=split(train_ends),
        validation=split(validation_ends),
        test=split(test_ends),
        scaling=scaling,
        x_next=_windows(values, np.array([last]), length).astype("float32"),
        next_as_of_date=features.index[last].date(),
        next_base_close=float(close[last]),
        next_volatility=float(volatility[last]),
        first_date=prices.index[0].date(),
        last_date=prices.index[-1].date(),
    )
    logger.debug(
        "prepared %d train, %d validation, %d test windows from %d bars",
        len(data.train),
        len(data.validation),
        len(data.test),
        len(prices),
    )
    return data
