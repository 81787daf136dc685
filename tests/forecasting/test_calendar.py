import datetime as dt

import pytest

from forecasting.calendar import (
    is_trading_day,
    last_completed_session,
    next_trading_day,
    previous_trading_day,
    session_close,
    trading_days,
    trading_days_between,
)

UTC = dt.UTC


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2025-02-07", dt.date(2025, 2, 10)),  # Friday -> Monday
        ("2025-02-08", dt.date(2025, 2, 10)),  # Saturday -> Monday
        ("2024-12-31", dt.date(2025, 1, 2)),  # New Year's Day is a holiday
        ("2024-11-27", dt.date(2024, 11, 29)),  # Thanksgiving
        ("2001-09-10", dt.date(2001, 9, 17)),  # exchanges closed after September 11
        ("2025-02-11", dt.date(2025, 2, 12)),
    ],
)
def test_next_trading_day_skips_weekends_and_holidays(day, expected):
    assert next_trading_day(day) == expected


def test_previous_trading_day():
    assert previous_trading_day("2025-01-02") == dt.date(2024, 12, 31)
    assert previous_trading_day(dt.date(2025, 2, 10)) == dt.date(2025, 2, 7)


def test_is_trading_day():
    assert is_trading_day("2025-02-12")
    assert not is_trading_day("2001-09-12")
    assert not is_trading_day("2025-02-08")


def test_last_completed_session_waits_for_the_close():
    during = dt.datetime(2025, 2, 12, 18, 0, tzinfo=UTC)  # 13:00 in New York
    after = dt.datetime(2025, 2, 12, 21, 30, tzinfo=UTC)
    assert last_completed_session(during) == dt.date(2025, 2, 11)
    assert last_completed_session(after) == dt.date(2025, 2, 12)
    # Naive datetimes are UTC; Saturday morning -> Friday's session.
    assert last_completed_session(dt.datetime(2025, 2, 8, 9, 0)) == dt.date(2025, 2, 7)


def test_early_close_is_known():
    # The day after Thanksgiving closes at 13:00 New York time.
    assert session_close("2024-11-29").hour == 18


def test_trading_days_between_counts_sessions_after_start():
    assert trading_days_between("2025-01-31", "2025-01-31") == 0
    assert trading_days_between("2025-02-07", "2025-02-10") == 1
    assert trading_days_between("2024-12-31", "2025-01-31") == 20
    assert trading_days("2025-02-07", "2025-02-11") == [
        dt.date(2025, 2, 7),
        dt.date(2025, 2, 10),
        dt.date(2025, 2, 11),
    ]
