import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from forecasting.config import FeatureConfig
from forecasting.errors import InsufficientDataError
from forecasting.features import (
    FEATURE_NAMES,
    MINIMUM_WINDOWS_PER_SPLIT,
    VOLATILITY_FLOOR,
    Split,
    make_features,
    minimum_rows,
    prepare,
)

SPLIT_FIELDS = ("x", "y", "base_close", "target_close", "volatility")
PRICE_COLUMNS = ["open", "high", "low", "close", "adj_close", "volume"]


def _bars(close, volume, open_=None, high=None, low=None) -> pd.DataFrame:
    index = pd.DatetimeIndex(pd.bdate_range("2024-01-02", periods=len(close)), name="date")
    close = np.asarray(close, dtype="float64")
    return pd.DataFrame(
        {
            "open": close if open_ is None else open_,
            "high": close if high is None else high,
            "low": close if low is None else low,
            "close": close,
            "adj_close": close,
            "volume": np.asarray(volume, dtype="float64"),
        },
        index=index,
    )


def _assert_same_windows(first: Split, second: Split) -> None:
    for name in SPLIT_FIELDS:
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name), err_msg=name)
    assert first.as_of_dates.equals(second.as_of_dates)
    assert first.target_dates.equals(second.target_dates)


def test_features_match_hand_computation():
    prices = _bars(
        close=[100.0, 110.0, 99.0],
        volume=[1000.0, 2000.0, 500.0],
        open_=[100.0, 105.0, 112.0],
        high=[101.0, 115.0, 113.0],
        low=[99.0, 104.0, 98.0],
    )
    features = make_features(prices, volatility_window=2)
    assert list(features.columns) == list(FEATURE_NAMES)
    assert list(features.index) == list(prices.index[1:])
    # Sample standard deviation of two returns a, b: |a - b| / sqrt(2).
    volatility = abs(math.log(1.1) - math.log(0.9)) / math.sqrt(2)
    expected = [
        [math.log(110 / 100), math.log(105 / 100), math.log(115 / 110), math.log(104 / 110),
         math.log(2), math.nan],
        [math.log(99 / 110), math.log(112 / 110), math.log(113 / 99), math.log(98 / 99),
         math.log(0.25), math.log(volatility)],
    ]  # fmt: skip
    np.testing.assert_allclose(features.to_numpy(), expected, rtol=1e-12)


def test_log_volatility_is_the_sample_std_of_the_last_returns():
    close = [100.0, 110.0, 99.0, 108.9, 108.9]  # returns log 1.1, log 0.9, log 1.1, 0
    features = make_features(_bars(close=close, volume=[1] * 5), volatility_window=3)
    a, b = math.log(1.1), math.log(0.9)
    mean = (2 * a + b) / 3
    first = math.sqrt((2 * (a - mean) ** 2 + (b - mean) ** 2) / 2)  # ddof = 1
    mean = (a + b) / 3
    second = math.sqrt(((a - mean) ** 2 + (b - mean) ** 2 + mean**2) / 2)
    log_volatility = features["log_volatility"].to_numpy()
    assert np.isnan(log_volatility[:2]).all()
    np.testing.assert_allclose(log_volatility[2:], [math.log(first), math.log(second)], rtol=1e-12)


def test_flat_prices_floor_the_volatility():
    features = make_features(_bars(close=[50.0] * 4, volume=[1] * 4), volatility_window=2)
    np.testing.assert_array_equal(features["log_volatility"].iloc[1:], math.log(VOLATILITY_FLOOR))


def test_zero_volume_reads_as_no_change_not_infinity():
    features = make_features(_bars(close=[10.0, 11.0, 12.0, 13.0], volume=[100, 0, 0, 200]))
    np.testing.assert_allclose(features["volume_change"], [0.0, 0.0, math.log(2)])


def test_missing_column_is_a_clear_value_error():
    with pytest.raises(ValueError, match="volume"):
        make_features(_bars(close=[1.0, 2.0], volume=[1, 1]).drop(columns="volume"))


@pytest.mark.parametrize(
    ("bars", "config", "sizes"),
    [
        # 300 bars: 299 feature rows, windows end at rows 28 .. 297 (270 of them); each holdout
        # is capped at floor(0.15 * 270) = 40.
        (300, FeatureConfig(), (190, 40, 40)),
        # The fewest bars: 134 windows, floor(0.15 * 134) = 20 per holdout.
        (164, FeatureConfig(), (94, 20, 20)),
        # A long history: 1970 windows, holdouts at their configured 250 (cap 295).
        (2000, FeatureConfig(), (1470, 250, 250)),
        (300, FeatureConfig(validation_windows=25, test_windows=30), (215, 25, 30)),
        (300, FeatureConfig(holdout_share=0.3), (108, 81, 81)),
        # Windows of 5 over a 10-day volatility: ends at rows 13 .. 297, 285 windows, cap 42.
        (300, FeatureConfig(sequence_length=5, volatility_window=10), (201, 42, 42)),
    ],
)
def test_split_sizes_and_caps(make_prices, bars, config, sizes):
    data = prepare(make_prices(bars), config)
    assert (len(data.train), len(data.validation), len(data.test)) == sizes
    assert len(data.windows) == sum(sizes)
    assert data.windows.x.shape == (sum(sizes), config.sequence_length, len(FEATURE_NAMES))


def test_minimum_rows_by_hand():
    # floor(0.15 * 134) = 20 is the first cap of 20 windows: 134 windows + 28 + 2 bars.
    assert minimum_rows(FeatureConfig()) == 164
    # floor(0.3 * 67) = 20, and 67 - 40 = 27 fit windows: 67 + 28 + 2.
    assert minimum_rows(FeatureConfig(holdout_share=0.3)) == 97


def test_too_little_history_says_how_many_rows_are_needed(prices):
    config = FeatureConfig()
    with pytest.raises(InsufficientDataError, match="163 daily bars are too few: at least 164"):
        prepare(prices.iloc[:163], config)
    data = prepare(prices.iloc[:164], config)
    assert min(len(data.train), len(data.validation), len(data.test)) == MINIMUM_WINDOWS_PER_SPLIT


def test_split_is_chronological_and_test_is_the_newest(prices, prepared):
    train, validation, test = prepared.train, prepared.validation, prepared.test
    for split in (prepared.windows, train, validation, test):
        assert split.as_of_dates.is_monotonic_increasing and split.as_of_dates.is_unique
        assert split.x.dtype == np.float32 and split.y.dtype == np.float32
        assert split.x.shape == (len(split), 10, len(FEATURE_NAMES))
    # Consecutive windows: each split starts the session after the previous one ends.
    assert validation.as_of_dates[0] == train.target_dates[-1]
    assert test.as_of_dates[0] == validation.target_dates[-1]
    # The first window ends on the 29th feature row (bar 30): its days all have a volatility.
    assert train.as_of_dates[0] == prices.index[29]
    assert test.target_dates[-1] == prices.index[-1]
    assert prepared.last_target_date == prices.index[-1].date()
    assert prepared.next_as_of_date == prepared.last_date == prices.index[-1].date()
    assert prepared.first_date == prices.index[0].date()


def test_windows_are_train_then_validation_then_test(prepared):
    parts = (prepared.train, prepared.validation, prepared.test)
    for name in SPLIT_FIELDS:
        joined = np.concatenate([getattr(part, name) for part in parts])
        np.testing.assert_array_equal(getattr(prepared.windows, name), joined, err_msg=name)
    for name in ("as_of_dates", "target_dates"):
        first, *rest = (getattr(part, name) for part in parts)
        joined = first.append(rest)
        assert getattr(prepared.windows, name).equals(joined)


def test_a_split_is_sliced_by_date_order(prepared):
    newest = prepared.windows[-50:]
    assert len(newest) == 50
    assert newest.target_dates[-1] == prepared.windows.target_dates[-1]
    assert newest.as_of_dates[0] == prepared.windows.as_of_dates[-50]
    np.testing.assert_array_equal(newest.x, prepared.windows.x[-50:])
    np.testing.assert_array_equal(newest.volatility, prepared.windows.volatility[-50:])
    _assert_same_windows(prepared.windows[len(prepared.train) :][-40:], prepared.test)
    with pytest.raises(TypeError, match="sliced"):
        prepared.windows[0]


def test_windows_align_with_targets(prices, prepared):
    features = make_features(prices)
    test = prepared.test
    for sample in (0, len(test) // 2, len(test) - 1):
        as_of = test.as_of_dates[sample]
        position = features.index.get_loc(as_of)
        np.testing.assert_allclose(
            test.x[sample], features.iloc[position - 9 : position + 1].to_numpy(), rtol=1e-6
        )
        assert test.target_dates[sample] == features.index[position + 1]
        assert test.base_close[sample] == prices.loc[as_of, "close"]
        assert test.target_close[sample] == prices.loc[test.target_dates[sample], "close"]
        expected_return = math.log(test.target_close[sample] / test.base_close[sample])
        assert test.y[sample] == pytest.approx(expected_return, rel=1e-6)
        volatility = features["close_return"].iloc[position - 19 : position + 1].std()
        assert test.volatility[sample] == pytest.approx(volatility, rel=1e-9)
    np.testing.assert_allclose(prepared.x_next[0], features.iloc[-10:].to_numpy(), rtol=1e-6)
    assert prepared.next_base_close == prices["close"].iloc[-1]
    assert prepared.next_volatility == pytest.approx(features["close_return"].iloc[-20:].std())


def test_scaling_uses_fit_windows_only(prices, prepared):
    features = make_features(prices)
    train = prepared.train
    first_row = features.index.get_loc(train.as_of_dates[0]) - 9
    last_row = features.index.get_loc(train.as_of_dates[-1])
    rows = features.iloc[first_row : last_row + 1].to_numpy()
    np.testing.assert_allclose(prepared.scaling.feature_mean, rows.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(prepared.scaling.feature_std, rows.std(axis=0), rtol=1e-12)
    targets = np.log(train.target_close / train.base_close)
    assert prepared.scaling.target_mean == pytest.approx(targets.mean(), rel=1e-12)
    assert prepared.scaling.target_std == pytest.approx(targets.std(), rel=1e-12)
    # Not the statistics of every window: those differ.
    assert not np.allclose(prepared.scaling.feature_mean, features.iloc[20:].mean(), rtol=1e-3)


def test_changing_validation_and_test_prices_leaves_scaling_unchanged(prices, prepared):
    shocked = prices.copy()
    later = shocked.index > prepared.train.target_dates[-1]
    shocked.loc[later, ["open", "high", "low", "close", "adj_close"]] *= 3.0
    shocked.loc[later, "volume"] *= 10.0
    shocked.loc[later, "close"] *= np.linspace(0.8, 1.2, later.sum())
    again = prepare(shocked, FeatureConfig())
    assert not np.array_equal(again.validation.y, prepared.validation.y)
    assert not np.array_equal(again.test.x, prepared.test.x)
    np.testing.assert_array_equal(again.scaling.feature_mean, prepared.scaling.feature_mean)
    np.testing.assert_array_equal(again.scaling.feature_std, prepared.scaling.feature_std)
    assert again.scaling.target_mean == prepared.scaling.target_mean
    assert again.scaling.target_std == prepared.scaling.target_std
    _assert_same_windows(again.train, prepared.train)


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_no_look_ahead_poisoned_future(prices, prepared, split):
    # Day D inside each split; every bar after it multiplied by 1000.
    day = getattr(prepared, split).as_of_dates[15]
    poisoned = prices.copy()
    poisoned.loc[poisoned.index > day, PRICE_COLUMNS] *= 1000.0
    again = prepare(poisoned, FeatureConfig())
    known = int((prepared.windows.target_dates <= day).sum())
    assert known > 0 and again.windows.target_dates[known - 1] == day
    _assert_same_windows(again.windows[:known], prepared.windows[:known])
    # The window whose target is the first poisoned bar sees the 1000x jump.
    assert again.windows.y[known] == pytest.approx(prepared.windows.y[known] + math.log(1000))


def test_importing_features_does_not_load_tensorflow():
    code = "import sys, forecasting.features; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_a_retrain_fits_on_the_newest_max_fit_windows_only(prices):
    capped = prepare(prices, FeatureConfig(max_fit_windows=30))
    full = prepare(prices, FeatureConfig())
    assert len(full.train) > 30
    assert (len(capped.train), len(capped.validation), len(capped.test)) == (
        30,
        len(full.validation),
        len(full.test),
    )
    # The newest fit windows are the same ones; older windows are left out of everything.
    np.testing.assert_array_equal(capped.train.x, full.train.x[-30:])
    np.testing.assert_array_equal(capped.test.x, full.test.x)
    assert len(capped.windows) == 30 + len(capped.validation) + len(capped.test)
    # train_start is the oldest bar the first window reads (its returns and its volatility).
    first_window_day = capped.train.as_of_dates[0]
    position = prices.index.get_loc(first_window_day)
    config = FeatureConfig()
    assert (
        capped.first_date
        == prices.index[position - config.sequence_length - config.volatility_window + 1].date()
    )
    assert full.first_date == prices.index[0].date()
