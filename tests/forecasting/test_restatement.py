import datetime as dt

import numpy as np
import pandas as pd
import pytest

from forecasting.calendar import trading_days
from forecasting.restatement import Restatement, find_restatement


def bars(start: str = "2025-01-02", end: str = "2025-02-12") -> pd.DataFrame:
    """Consistent bars on every NYSE session from start to end, volumes in round lots."""
    days = pd.DatetimeIndex(trading_days(start, end), name="date")
    close = 100.0 + (days - pd.Timestamp("2024-01-01")).days * 0.1  # the same on any range
    return pd.DataFrame(
        {
            "open": close - 1,
            "high": close + 2,
            "low": close - 2,
            "close": close,
            "adj_close": close * 0.999,
            "volume": np.full(len(days), 200_000_000.0) + 100 * np.arange(len(days)),
        },
        index=days,
    )


def test_no_restatement_when_the_overlap_agrees():
    stored = bars("2025-01-02", "2025-02-05")
    fetched = bars("2025-01-02", "2025-02-12")
    assert find_restatement(stored, fetched) is None
    assert find_restatement(stored, bars("2024-01-02", "2024-02-01")) is None  # no overlap


def test_a_split_is_a_restatement():
    stored = bars("2025-01-02", "2025-02-12")
    fetched = stored.copy()
    fetched[["close", "adj_close"]] /= 10  # a 10:1 split restates all history
    fetched.index = fetched.index.as_unit("us")  # what the database returns may differ in unit

    found = find_restatement(stored, fetched)

    assert found == Restatement(
        first_date=dt.date(2025, 1, 2),
        rows=len(stored),
        overlap=len(stored),
        max_relative_difference=pytest.approx(0.9),
    )
    rows = len(stored)
    assert str(found) == (
        f"{rows} of {rows} overlapping rows differ from 2025-01-02 on "
        "(largest relative difference 0.9)"
    )


def test_a_dividend_readjustment_is_found_above_the_tolerance():
    stored = bars("2025-01-02", "2025-02-12")
    fetched = stored.copy()
    fetched.loc[:"2025-02-05", "adj_close"] *= 1 - 7.5e-5  # NVDA's $0.01 dividend at $133
    assert find_restatement(stored, fetched) is None  # below the default rtol=1e-4
    found = find_restatement(stored, fetched, rtol=1e-5)
    assert found is not None
    assert (found.first_date, found.rows) == (dt.date(2025, 1, 2), len(stored[:"2025-02-05"]))
    assert found.max_relative_difference == pytest.approx(7.5e-5)


def test_a_value_missing_on_one_side_is_a_change():
    stored = bars("2025-01-02", "2025-01-10")
    fetched = stored.copy()
    fetched.loc["2025-01-08", "close"] = np.nan
    found = find_restatement(stored, fetched)
    assert found is not None and found.first_date == dt.date(2025, 1, 8) and found.rows == 1


def test_find_restatement_needs_close_and_adj_close():
    with pytest.raises(ValueError, match=r"stored prices lack the column\(s\) \['adj_close'\]"):
        find_restatement(bars().drop(columns="adj_close"), bars())
