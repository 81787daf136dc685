import math

import numpy as np
import pandas as pd
import pytest

from forecasting.volatility import (
    VARIANCE_FLOOR,
    close_to_close,
    garman_klass,
    har_components,
    log_variance,
    overnight,
    parkinson,
    qlike,
    range_features,
    rogers_satchell,
    yang_zhang,
)

LOG2 = math.log(2.0)
FLOOR_LOG = math.log(VARIANCE_FLOOR)

# Five sessions; the third is a halted bar (open = high = low = close = the previous close).
TINY = pd.DataFrame(
    {
        "open": [100.0, 103.0, 107.0, 105.0, 101.0],
        "high": [104.0, 108.0, 107.0, 106.0, 103.0],
        "low": [98.0, 101.0, 107.0, 99.0, 100.0],
        "close": [102.0, 107.0, 107.0, 100.0, 102.0],
        "volume": [1e6, 2e6, 0.0, 3e6, 1e6],
    },
    index=pd.DatetimeIndex(pd.bdate_range("2024-01-01", periods=5), name="date"),
)


def bar(day: int) -> tuple[float, float, float, float]:
    row = TINY.iloc[day]
    return row["open"], row["high"], row["low"], row["close"]


def hand_rogers_satchell(day: int) -> float:
    o, h, l, c = bar(day)  # noqa: E741
    return math.log(h / o) * math.log(h / c) + math.log(l / o) * math.log(l / c)


def test_single_bar_estimators_match_hand_computations():
    # Day 1: O 103, H 108, L 101, C 107, previous close 102.
    parkinson_1 = math.log(108 / 101) ** 2 / (4 * LOG2)
    garman_klass_1 = 0.5 * math.log(108 / 101) ** 2 - (2 * LOG2 - 1) * math.log(107 / 103) ** 2
    rogers_satchell_1 = math.log(108 / 103) * math.log(108 / 107) + math.log(101 / 103) * math.log(
        101 / 107
    )
    assert parkinson(TINY).iloc[1] == pytest.approx(parkinson_1, rel=1e-12)
    assert garman_klass(TINY).iloc[1] == pytest.approx(garman_klass_1, rel=1e-12)
    assert rogers_satchell(TINY).iloc[1] == pytest.approx(rogers_satchell_1, rel=1e-12)
    assert overnight(TINY).iloc[1] == pytest.approx(math.log(103 / 102) ** 2, rel=1e-12)
    assert close_to_close(TINY).iloc[1] == pytest.approx(math.log(107 / 102) ** 2, rel=1e-12)
    # Day 3: O 105, H 106, L 99, C 100 after a close of 107.
    assert garman_klass(TINY).iloc[3] == pytest.approx(
        0.5 * math.log(106 / 99) ** 2 - (2 * LOG2 - 1) * math.log(100 / 105) ** 2, rel=1e-12
    )
    assert rogers_satchell(TINY).iloc[3] == pytest.approx(hand_rogers_satchell(3), rel=1e-12)
    assert overnight(TINY).iloc[3] == pytest.approx(math.log(105 / 107) ** 2, rel=1e-12)
    # The first bar has no previous close.
    assert math.isnan(overnight(TINY).iloc[0]) and math.isnan(close_to_close(TINY).iloc[0])
    for estimator in (parkinson, garman_klass, rogers_satchell, overnight, close_to_close):
        result = estimator(TINY)
        assert result.name == estimator.__name__
        assert result.index.equals(TINY.index)


def test_yang_zhang_matches_a_hand_computation():
    # Window 2, so k = 0.34 / (1.34 + 3 / 1); a sample variance of two values is (a - b)^2 / 2.
    k = 0.34 / (1.34 + 3.0)
    overnight_returns = [math.log(103 / 102), math.log(107 / 107), math.log(105 / 107)]
    open_close = [math.log(107 / 103), math.log(107 / 107), math.log(100 / 105)]
    rogers_satchell_values = [hand_rogers_satchell(day) for day in (1, 2, 3)]
    expected = {
        day: (overnight_returns[i] - overnight_returns[i + 1]) ** 2 / 2
        + k * (open_close[i] - open_close[i + 1]) ** 2 / 2
        + (1 - k) * (rogers_satchell_values[i] + rogers_satchell_values[i + 1]) / 2
        for i, day in enumerate((2, 3))
    }
    result = yang_zhang(TINY, window=2)
    assert result.iloc[:2].isna().all()  # day 1 has a single overnight return
    assert result.iloc[2] == pytest.approx(expected[2], rel=1e-12)
    assert result.iloc[3] == pytest.approx(expected[3], rel=1e-12)
    with pytest.raises(ValueError, match="window"):
        yang_zhang(TINY, window=1)


def test_range_features_match_hand_computations():
    features = range_features(TINY, horizons=(1, 2, 3), yang_zhang_window=2)
    assert list(features.columns) == [
        "log_parkinson",
        "log_garman_klass",
        "log_rogers_satchell",
        "log_yang_zhang",
        "log_overnight",
        "log_close_to_close",
        "log_har_1",
        "log_har_2",
        "log_har_3",
        "negative_return",
    ]
    assert features.index.equals(TINY.index)
    garman_klass_values = [
        0.5 * math.log(h / l) ** 2 - (2 * LOG2 - 1) * math.log(c / o) ** 2
        for o, h, l, c in (bar(day) for day in range(5))  # noqa: E741
    ]
    day_3 = features.iloc[3]
    assert day_3["log_parkinson"] == pytest.approx(math.log(math.log(106 / 99) ** 2 / (4 * LOG2)))
    assert day_3["log_close_to_close"] == pytest.approx(math.log(math.log(100 / 107) ** 2))
    assert day_3["log_har_1"] == pytest.approx(math.log(garman_klass_values[3]))
    # Day 2's Garman-Klass is zero (a halted bar), so the 2-day mean is half of day 3's.
    assert day_3["log_har_2"] == pytest.approx(math.log(garman_klass_values[3] / 2))
    assert features.iloc[1]["log_har_2"] == pytest.approx(
        math.log((garman_klass_values[0] + garman_klass_values[1]) / 2)
    )
    assert features.iloc[4]["log_har_3"] == pytest.approx(
        math.log(sum(garman_klass_values[2:]) / 3)
    )
    assert features["log_har_3"].iloc[:2].isna().all()
    assert features["log_har_2"].iloc[:1].isna().all()
    # The leverage term: the negative part of the close-to-close log return.
    np.testing.assert_allclose(
        features["negative_return"].to_numpy(),
        [np.nan, 0.0, 0.0, math.log(100 / 107), 0.0],
        rtol=1e-12,
    )


def test_a_zero_range_bar_gets_the_floor_not_minus_infinity():
    features = range_features(TINY, horizons=(1, 2), yang_zhang_window=2)
    halted = features.iloc[2]
    for name in ("parkinson", "garman_klass", "rogers_satchell", "overnight", "close_to_close"):
        assert halted[f"log_{name}"] == FLOOR_LOG  # log(1e-8) = -18.4
    assert halted["log_har_1"] == FLOOR_LOG
    assert halted["log_har_2"] > FLOOR_LOG  # day 1's range is in the 2-day mean
    assert np.isfinite(features.iloc[1:].drop(columns="log_yang_zhang").to_numpy()).all()
    # A caller's own floor.
    assert range_features(TINY, floor=1e-6).iloc[2]["log_parkinson"] == pytest.approx(
        math.log(1e-6)
    )


def test_log_variance_floors_and_keeps_missing_values():
    result = log_variance(pd.Series([0.0, -1e-5, 1e-4, np.nan]))
    np.testing.assert_array_equal(result.to_numpy(), [FLOOR_LOG, FLOOR_LOG, math.log(1e-4), np.nan])
    with pytest.raises(ValueError, match="floor"):
        log_variance(pd.Series([1.0]), floor=0.0)


def test_har_components_are_trailing_means():
    measure = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    result = har_components(measure, horizons=(1, 5))
    assert list(result.columns) == ["har_1", "har_5"]
    np.testing.assert_array_equal(result["har_1"], measure)
    np.testing.assert_array_equal(result["har_5"], [np.nan] * 4 + [3.0, 4.0])
    for horizons in [(), (0, 5), (5, 5)]:
        with pytest.raises(ValueError, match="horizons"):
            har_components(measure, horizons)


def test_range_features_never_look_ahead(make_prices):
    bars = make_prices(300, seed=11)
    day = bars.index[200]
    later = bars.index > day
    poisoned = bars.copy()
    # Every later bar changes, its range and gaps included (low <= open, close <= high holds).
    poisoned.loc[later, "open"] *= 3.0
    poisoned.loc[later, "high"] *= 5.0
    poisoned.loc[later, "low"] *= 0.5
    poisoned.loc[later, "close"] *= 2.0
    original = range_features(bars)
    changed = range_features(poisoned)
    pd.testing.assert_frame_equal(changed.loc[:day], original.loc[:day], rtol=0, atol=0)
    # Every feature of the next day moves (negative_return: only if the day's return is < 0).
    moved = changed.iloc[201] != original.iloc[201]
    assert moved.drop("negative_return").all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda bars: bars.drop(columns="high"), "high"),
        (lambda bars: bars.iloc[::-1], "sorted"),
        (lambda bars: bars.reset_index(drop=True), "DatetimeIndex"),
        (lambda bars: bars.assign(low=[98.0, 0.0, 107.0, 99.0, 100.0]), "positive"),
        (lambda bars: bars.assign(close=[102.0, np.nan, 107.0, 100.0, 102.0]), "finite"),
    ],
)
def test_estimators_refuse_bad_bars(change, message):
    with pytest.raises(ValueError, match=message):
        range_features(change(TINY))
    with pytest.raises(ValueError, match=message):
        garman_klass(change(TINY))


def test_range_features_refuse_an_unknown_har_measure():
    with pytest.raises(ValueError, match="har_measure"):
        range_features(TINY, har_measure="realized")


def test_qlike_is_zero_on_the_proxy_and_positive_elsewhere():
    proxy = np.array([1e-4, 4e-4, 2.5e-3, 1e-2])
    np.testing.assert_allclose(qlike(proxy, proxy), 0.0, atol=1e-15)
    for factor in (0.5, 0.9, 1.1, 2.0):
        assert (qlike(proxy, proxy * factor) > 0).all()
    # Hand values: proxy 1, forecast 0.5 -> 2 - log 2 - 1; forecast 2 -> 0.5 - log 0.5 - 1.
    under, over = qlike([1.0, 1.0], [0.5, 2.0])
    assert under == pytest.approx(1.0 - LOG2)
    assert over == pytest.approx(LOG2 - 0.5)
    assert under > over  # an under-forecast costs more than an over-forecast by the same factor
    # Scale-free: the loss depends on the ratio only.
    assert qlike(1e-6, 2e-6) == pytest.approx(qlike(1.0, 2.0))


def test_qlike_handles_missing_and_zero_proxies():
    losses = qlike([np.nan, 1e-4, 0.0, 1e-4], [1e-4, np.nan, 1e-4, 1e-4])
    assert np.isnan(losses[:2]).all()
    # A zero proxy (a zero return) is floored: finite, and as if the proxy were 1e-8.
    ratio = VARIANCE_FLOOR / 1e-4
    assert losses[2] == pytest.approx(ratio - math.log(ratio) - 1.0)
    assert losses[3] == 0.0
    assert np.nanmean(losses) == pytest.approx(losses[2] / 2)


@pytest.mark.parametrize(
    ("proxy", "forecast", "message"),
    [
        ([1e-4], [0.0], "forecast"),
        ([1e-4], [-1e-4], "forecast"),
        ([1e-4], [np.inf], "forecast"),
        ([-1e-4], [1e-4], "proxy"),
    ],
)
def test_qlike_refuses_impossible_variances(proxy, forecast, message):
    with pytest.raises(ValueError, match=message):
        qlike(proxy, forecast)


@pytest.fixture(scope="module")
def nvda_bars() -> pd.DataFrame:
    from forecasting.prices.sources import load_prices

    return load_prices("sample")


def test_garman_klass_is_more_efficient_than_close_to_close_on_nvda(nvda_bars):
    # Both sides estimate the same thing, the close-to-close variance of a day: the squared
    # return, or Garman-Klass (the session) plus the squared overnight gap. On NVDA's 6,555
    # sessions their means agree (ratio 0.99), and Garman-Klass's estimate varies 1.9 times less
    # from day to day. Theory (a driftless Brownian motion) promises 7.4 for the session alone;
    # real bars, with jumps and heavy tails, give 2.3 (Garman-Klass against the squared
    # open-to-close return).
    squared_return = close_to_close(nvda_bars)
    range_based = garman_klass(nvda_bars) + overnight(nvda_bars)
    days = squared_return.notna()
    squared_return, range_based = squared_return[days], range_based[days]
    assert range_based.mean() / squared_return.mean() == pytest.approx(1.0, abs=0.1)
    assert squared_return.var() / range_based.var() > 1.5

    session_only = np.log(nvda_bars["close"] / nvda_bars["open"]) ** 2
    assert session_only.var() / garman_klass(nvda_bars).var() > 1.8
    # The range features of the sample are finite after their warm-up.
    features = range_features(nvda_bars)
    assert np.isfinite(features.iloc[22:].to_numpy()).all()
