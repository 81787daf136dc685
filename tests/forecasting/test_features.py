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
    make_features,
    minimum_rows,
    prepare,
)


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


def test_features_match_hand_computation():
    prices = _bars(
        close=[100.0, 110.0, 99.0],
        volume=[1000.0, 2000.0, 500.0],
        open_=[100.0, 105.0, 112.0],
        high=[101.0, 115.0, 113.0],
        low=[99.0, 104.0, 98.0],
    )
    features = make_features(prices)
    assert list(features.columns) == list(FEATURE_NAMES)
    assert list(features.index) == list(prices.index[1:])
    expected = [
        [math.log(110 / 100), math.log(105 / 100), math.log(115 / 110), math.log(104 / 110),
         math.log(2)],
        [math.log(99 / 110), math.log(112 / 110), math.log(113 / 99), math.log(98 / 99),
         math.log(0.25)],
    ]  # fmt: skip
    np.testing.assert_allclose(features.to_numpy(), expected, rtol=1e-12)


def test_zero_volume_reads_as_no_change_not_infinity():
    features = make_features(_bars(close=[10.0, 11.0, 12.0, 13.0], volume=[100, 0, 0, 200]))
    np.testing.assert_allclose(features["volume_change"], [0.0, 0.0, math.log(2)])


def test_missing_column_is_a_clear_value_error():
    with pytest.raises(ValueError, match="volume"):
        make_features(_bars(close=[1.0, 2.0], volume=[1, 1]).drop(columns="volume"))


def test_split_is_chronological_and_test_is_the_last_share(prices, prepared):
    train, validation, test = prepared.train, prepared.validation, prepared.test
    samples = len(prices) - 1 - max(10, 20)
    assert len(train) + len(validation) + len(test) == samples
    assert len(test) == math.floor(samples * 0.2) and len(validation) == math.floor(samples * 0.1)
    assert train.target_dates[-1] < validation.target_dates[0]
    assert validation.target_dates[-1] < test.target_dates[0]
    # Consecutive windows: each split starts the session after the previous one ends.
    assert validation.as_of_dates[0] == train.target_dates[-1]
    assert test.as_of_dates[0] == validation.target_dates[-1]
    assert test.target_dates[-1] == prices.index[-1]
    assert prepared.next_as_of_date == prices.index[-1].date()
    for split in (train, validation, test):
        assert split.x.dtype == np.float32 and split.y.dtype == np.float32
        assert split.x.shape == (len(split), 10, len(FEATURE_NAMES))


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


def test_scaling_uses_training_windows_only(prices, prepared):
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


def test_changing_later_prices_leaves_scaling_unchanged(prices, prepared):
    shocked = prices.copy()
    later = shocked.index > prepared.train.target_dates[-1]
    shocked.loc[later, ["open", "high", "low", "close", "adj_close"]] *= 3.0
    shocked.loc[later, "volume"] *= 10.0
    again = prepare(shocked, FeatureConfig())
    np.testing.assert_array_equal(again.scaling.feature_mean, prepared.scaling.feature_mean)
    np.testing.assert_array_equal(again.scaling.feature_std, prepared.scaling.feature_std)
    assert again.scaling.target_std == prepared.scaling.target_std


def test_too_little_history_says_how_many_rows_are_needed(prices):
    config = FeatureConfig()
    needed = minimum_rows(config)
    with pytest.raises(InsufficientDataError, match=f"at least {needed}"):
        prepare(prices.iloc[: needed - 1], config)
    data = prepare(prices.iloc[:needed], config)
    assert min(len(data.train), len(data.validation), len(data.test)) >= MINIMUM_WINDOWS_PER_SPLIT


def test_importing_features_does_not_load_tensorflow():
    code = "import sys, forecasting.features; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
