import numpy as np
import pandas as pd
import pytest

from forecasting.calendar import trading_days
from forecasting.prices.partial_bars import closes_early, partial_bar_reason, unsettled_sessions


def test_the_partial_bar_test_needs_twenty_earlier_sessions():
    volumes = np.array([200e6] * 20 + [1e6])
    assert partial_bar_reason(volumes[1:], early_close=False) is None
    assert partial_bar_reason(volumes, early_close=False) is not None
    assert partial_bar_reason(np.r_[volumes[:-1], 150e6], early_close=False) is None


def test_an_early_close_exempts_only_the_median_test():
    volumes = np.array([200e6] * 20 + [60e6])
    assert "0.30 times the median" in partial_bar_reason(volumes, early_close=False)
    assert partial_bar_reason(volumes, early_close=True) is None
    odd = np.r_[volumes[:-1], 60_000_001.0]
    assert "not a multiple of 100" in partial_bar_reason(odd, early_close=True)


def test_closes_early():
    assert closes_early(pd.Timestamp("2024-11-29"))  # the day after Thanksgiving, 13:00
    assert not closes_early(pd.Timestamp("2024-11-27"))


@pytest.mark.parametrize(
    ("now", "unsettled"),
    [
        ("2025-02-10 12:00", ["2025-02-10", "2025-02-11", "2025-02-12"]),
        ("2025-02-12 21:15", ["2025-02-12"]),  # closed at 21:00 UTC, not settled
        ("2025-02-12 21:30", []),
    ],
)
def test_sessions_not_closed_and_settled_at_the_moment_are_unsettled(now, unsettled):
    index = pd.DatetimeIndex(trading_days("2025-01-02", "2025-02-12"))
    found = index[unsettled_sessions(index, pd.Timestamp(now, tz="UTC"))]
    assert list(found) == [pd.Timestamp(day) for day in unsettled]
