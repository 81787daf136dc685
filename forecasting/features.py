"""From a price frame to model inputs: scale-free features, windows, a chronological split.

Every input is a log ratio, so the model sees the same kind of numbers at $0.04 (1999) and at
$140 (2025). The target is the next session's log return of Close. Every window whose target has
happened is used: ``fit`` windows train a retrain, the next ``validation`` windows stop it early,
and the newest ``test`` windows, held out of that fit, give its test loss and its first interval
calibration before the retrain walks forward through them (see ``forecasting.model``). Scaling
statistics are fitted on the fit windows only (the original blog fitted its MinMax scaler on the
whole series, a look-ahead leak).

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
FEATURE_NAMES = (
    "close_return",
    "open_gap",
    "high_range",
    "low_range",
    "volume_change",
    "log_volatility",
)
# Each split must hold at least this many windows; 20 test windows are also the fewest for
# which the 95% split-conformal quantile is finite (ceil((n + 1) * 0.95) <= n needs n >= 19).
MINIMUM_WINDOWS_PER_SPLIT = 20
# Realized volatility below 0.01% a day only happens on degenerate data; keeps the log finite.
VOLATILITY_FLOOR = 1e-4


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

    def __getitem__(self, index: slice) -> Split:
        """The windows in ``index`` (a slice), e.g. ``split[-250:]`` for the newest 250."""
        if not isinstance(index, slice):
            raise TypeError(f"a Split is sliced, not indexed; got {index!r}")
        return Split(
            x=self.x[index],
            y=self.y[index],
            as_of_dates=self.as_of_dates[index],
            target_dates=self.target_dates[index],
            base_close=self.base_close[index],
            target_close=self.target_close[index],
            volatility=self.volatility[index],
        )


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
    windows: Split
    """Every window whose target has happened, oldest first: ``train + validation + test``."""
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

    @property
    def last_target_date(self) -> dt.date:
        """The newest day a window's target covers: the last bar."""
        return self.windows.target_dates[-1].date()


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


def make_features(prices: pd.DataFrame, volatility_window: int = 20) -> pd.DataFrame:
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
        ``high_range = log(high / close)``, ``low_range = log(low / close)``,
        ``volume_change = log(volume / previous volume)`` and ``log_volatility``, the log of the
        standard deviation of the last ``volatility_window`` close returns (NaN until there are
        that many).
    """
    _check_prices(prices)
    close = prices["close"].astype("float64")
    previous_close = close.shift(1)
    # A zero volume on a trading day is a missing print, not a day without trades: carry the
    # last positive volume forward so that it reads as "no change" rather than a -inf spike.
    volume = prices["volume"].astype("float64").where(prices["volume"] > 0).ffill().bfill()
    close_return = np.log(close / previous_close)
    volatility = close_return.rolling(volatility_window).std()
    features = pd.DataFrame(
        {
            "close_return": close_return,
            "open_gap": np.log(prices["open"] / previous_close),
            "high_range": np.log(prices["high"] / close),
            "low_range": np.log(prices["low"] / close),
            "volume_change": np.log(volume / volume.shift(1)).fillna(0.0),
            "log_volatility": np.log(np.maximum(volatility, VOLATILITY_FLOOR)).where(
                volatility.notna()
            ),
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
    return samples + _first_window_end(config) + 2


def _first_window_end(config: FeatureConfig) -> int:
    # Every day of a window needs its volatility, which needs volatility_window returns.
    return config.volatility_window + config.sequence_length - 2


def _split_sizes(samples: int, config: FeatureConfig) -> tuple[int, int, int]:
    # A short history keeps most of its windows for fitting: each holdout takes at most a share.
    # The small epsilon keeps e.g. 0.15 * 200 = 29.999999 from flooring to 29.
    cap = math.floor(samples * config.holdout_share + 1e-9)
    n_test = min(config.test_windows, cap)
    n_validation = min(config.validation_windows, cap)
    return samples - n_test - n_validation, n_validation, n_test


def window_split(
    values: np.ndarray,
    window_ends: np.ndarray,
    length: int,
    dates: pd.Index,
    close: np.ndarray,
    volatility: np.ndarray,
) -> Split:
    """The windows ending at ``window_ends`` (positions of feature rows), each with its target:
    the next row's first feature (the next log return), its dates, closes and volatility."""
    return Split(
        x=windows_ending_at(values, window_ends, length).astype("float32"),
        y=values[window_ends + 1, 0].astype("float32"),
        as_of_dates=dates[window_ends],
        target_dates=dates[window_ends + 1],
        base_close=close[window_ends],
        target_close=close[window_ends + 1],
        volatility=volatility[window_ends],
    )


def windows_ending_at(values: np.ndarray, ends: np.ndarray, length: int) -> np.ndarray:
    """The windows of ``length`` rows of ``values`` ending at each position of ``ends``."""
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
        Every window whose target has happened, split into fit, validation and test (the
        newest ``test_windows``, validation just before; each at most ``holdout_share`` of a
        short history), the scaling statistics of the fit windows, and the window ``x_next``
        that ends at the last bar, for the next session's forecast.

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
            "load a longer history (a longer price file, or a later --as-of)"
        )
    features = make_features(prices, config.volatility_window)
    values = features.to_numpy(dtype="float64")
    first = config.volatility_window - 1
    if not np.isfinite(values[first:]).all():
        raise ValueError("features are not finite: prices hold missing or non-positive values")
    volatility = np.exp(features["log_volatility"].to_numpy())
    close = prices["close"].to_numpy(dtype="float64")[1:]
    length = config.sequence_length
    # A window may end once all its days have their volatility, and needs a next bar.
    ends = np.arange(_first_window_end(config), len(features) - 1)
    n_train, n_validation, _ = _split_sizes(len(ends), config)
    if n_train > config.max_fit_windows:
        # The newest years only: older regimes cost training time and teach little about
        # tomorrow's volatility.
        ends = ends[n_train - config.max_fit_windows :]
        n_train = config.max_fit_windows
    train_ends = ends[:n_train]
    validation_ends = ends[n_train : n_train + n_validation]
    test_ends = ends[n_train + n_validation :]

    def split(window_ends: np.ndarray) -> Split:
        return window_split(values, window_ends, length, features.index, close, volatility)

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
        windows=split(ends),
        train=split(train_ends),
        validation=split(validation_ends),
        test=split(test_ends),
        scaling=scaling,
        x_next=windows_ending_at(values, np.array([last]), length).astype("float32"),
        next_as_of_date=features.index[last].date(),
        next_base_close=float(close[last]),
        next_volatility=float(volatility[last]),
        # The oldest bar the first window depends on (its returns' and volatility's own bars).
        first_date=prices.index[ends[0] - length + 2 - config.volatility_window].date(),
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
