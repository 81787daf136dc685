"""Unadjusted splits: found with their date and ratio, refused, or adjusted for when asked."""

import numpy as np
import pandas as pd
import pytest

from forecasting.calendar import trading_days
from forecasting.errors import PriceValidationError
from forecasting.prices.price_files import SPLITS, read_price_csv
from forecasting.prices.sources import load_prices
from forecasting.prices.splits import (
    SPLITS_APPLIED,
    Split,
    adjust_for_splits,
    find_unadjusted_splits,
)
from forecasting.prices.validation import validate_prices


def adjusted_bars(sessions: int = 60, seed: int = 7) -> pd.DataFrame:
    """A split-adjusted history: a random walk of about 2% a day, volumes in round lots."""
    days = pd.DatetimeIndex(trading_days("2024-01-02", "2024-12-31")[:sessions], name="date")
    days = days.as_unit("ns")
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, sessions)))
    opening = close * np.exp(rng.normal(0, 0.005, sessions))
    return pd.DataFrame(
        {
            "open": opening,
            "high": np.maximum(opening, close) * 1.01,
            "low": np.minimum(opening, close) * 0.99,
            "close": close,
            "adj_close": close * 0.99,
            "volume": np.round(rng.uniform(2e5, 4e5, sessions)) * 100,
        },
        index=days,
    )


def unadjust(frame: pd.DataFrame, position: int, ratio: float, *, adj_close: bool = True):
    """What a raw file shows: the bars before the split on the old share count."""
    raw = frame.copy()
    columns = ["open", "high", "low", "close"] + (["adj_close"] if adj_close else [])
    raw.iloc[:position, [raw.columns.get_loc(c) for c in columns]] *= ratio
    raw.iloc[:position, raw.columns.get_loc("volume")] /= ratio
    return raw


def check(frame: pd.DataFrame, **options) -> pd.DataFrame:
    return validate_prices(frame, ticker="NVDA", origin="raw.csv", **options)


@pytest.mark.parametrize(("ratio", "label"), [(4.0, "4:1"), (10.0, "10:1"), (0.1, "1:10")])
def test_an_unadjusted_split_is_refused_naming_its_date_and_ratio(ratio, label):
    adjusted = adjusted_bars()
    raw = unadjust(adjusted, 30, ratio)
    day = f"{raw.index[30]:%Y-%m-%d}"
    before, after, opening = raw["close"].iloc[29], raw["close"].iloc[30], raw["open"].iloc[30]

    with pytest.raises(PriceValidationError) as raised:
        check(raw)

    assert str(raised.value) == (
        f"raw.csv ({day}): close {before:g} -> {after:g} (open {opening:g}) is a {label} split "
        "not adjusted in the earlier rows; use a split-adjusted file (Yahoo's export is), or run "
        "with --adjust-splits to put the earlier bars on the new scale"
    )


@pytest.mark.parametrize("ratio", [4.0, 10.0, 0.1])
def test_adjust_splits_puts_the_earlier_bars_on_the_new_scale(ratio):
    adjusted = adjusted_bars()
    raw = unadjust(adjusted, 30, ratio)

    clean = check(raw, adjust_splits=True)

    pd.testing.assert_frame_equal(clean, adjusted, check_freq=False, rtol=1e-12)
    assert clean.attrs[SPLITS_APPLIED] == (Split(raw.index[30], ratio, 30),)


def test_two_splits_are_both_adjusted_and_a_smooth_adj_close_is_left_alone():
    adjusted = adjusted_bars()
    raw = unadjust(unadjust(adjusted, 20, 4.0, adj_close=False), 45, 10.0, adj_close=False)
    found = find_unadjusted_splits(raw)
    assert [(str(split), split.position) for split in found] == [
        (f"4:1 split on {raw.index[20]:%Y-%m-%d}", 20),
        (f"10:1 split on {raw.index[45]:%Y-%m-%d}", 45),
    ]
    with pytest.raises(PriceValidationError, match=r"4:1 split .* \(1 more row like it\)$"):
        check(raw)
    pd.testing.assert_frame_equal(adjust_for_splits(raw, found), adjusted, rtol=1e-12)


def test_a_split_adjusted_history_has_no_split():
    assert find_unadjusted_splits(adjusted_bars()) == []
    assert find_unadjusted_splits(adjusted_bars().iloc[:1]) == []


def test_the_bundled_history_has_no_false_split():
    # Real NVDA fell 35% on 2004-08-06 with the open 31% down: a 3:2 split by price alone.
    sample = load_prices("sample")
    assert find_unadjusted_splits(sample) == []
    crash = sample.index.get_loc(pd.Timestamp("2004-08-06"))
    move = sample["close"].iloc[crash - 1] / sample["close"].iloc[crash]
    assert move == pytest.approx(1.544, abs=1e-3)


def test_a_third_down_is_a_3_2_split_only_on_usual_trading():
    adjusted = adjusted_bars()
    raw = unadjust(adjusted, 30, 1.5)
    assert [str(split.label) for split in find_unadjusted_splits(raw)] == ["3:2"]
    news = raw.copy()
    news.iloc[30, news.columns.get_loc("volume")] *= 5  # a crash trades heavily
    assert find_unadjusted_splits(news) == []


def test_a_listed_split_is_checked_with_its_own_ratio():
    adjusted = adjusted_bars()
    listed = np.zeros(len(adjusted))
    listed[30] = 7.0  # not a common ratio: found only because the file lists it
    assert find_unadjusted_splits(unadjust(adjusted, 30, 7.0)) == []
    (split,) = find_unadjusted_splits(unadjust(adjusted, 30, 7.0), listed)
    assert (split.label, split.listed) == ("7:1", True)
    # An adjusted file listing its splits, or a spin-off factor near 1, is fine.
    listed[40] = 1.0137
    assert find_unadjusted_splits(adjusted, listed) == []
    with pytest.raises(PriceValidationError, match=r"7:1 split \(listed in the file\)"):
        check(unadjust(adjusted, 30, 7.0), splits=listed)


def test_a_watchlist_file_s_splits_column_is_read_and_used(tmp_path):
    adjusted = adjusted_bars()
    raw = unadjust(adjusted, 30, 7.0)
    raw["splits"] = 0.0
    raw.iloc[30, raw.columns.get_loc("splits")] = 7.0
    path = tmp_path / "NVDA.csv"
    raw.rename(columns={"adj_close": "adjclose"}).rename_axis("time").to_csv(path)

    frame = read_price_csv(path, ticker="NVDA")
    assert frame.attrs[SPLITS][30] == 7.0 and sum(frame.attrs[SPLITS]) == 7.0

    with pytest.raises(PriceValidationError, match=r"NVDA\.csv line 32 .* 7:1 split"):
        load_prices(f"csv:{path}")
    clean = load_prices(f"csv:{path}", adjust_splits=True)
    np.testing.assert_allclose(clean.to_numpy(), adjusted.to_numpy(), rtol=1e-12)
    assert [split.label for split in clean.attrs[SPLITS_APPLIED]] == ["7:1"]
