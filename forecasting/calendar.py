"""NYSE trading days, from the exchange_calendars library (holidays, early closes, 9/11).

A forecast's target is the next *trading* day, not "tomorrow"; a bar counts as complete only once
its session has closed.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Literal

import exchange_calendars
import pandas as pd

EXCHANGE = "XNYS"
_CALENDAR_START = "1990-01-01"


@lru_cache(maxsize=1)
def _calendar() -> exchange_calendars.ExchangeCalendar:
    end = pd.Timestamp.today().normalize() + pd.DateOffset(years=2)
    return exchange_calendars.get_calendar(EXCHANGE, start=_CALENDAR_START, end=end)


def _as_date(value: dt.date | str | pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(value).tz_localize(None).normalize()


def is_trading_day(day: dt.date | str | pd.Timestamp) -> bool:
    """Whether the NYSE holds a session on ``day``."""
    return bool(_calendar().is_session(_as_date(day)))


def next_trading_day(day: dt.date | str | pd.Timestamp) -> dt.date:
    """The first NYSE session strictly after ``day`` (a Friday's is the next Monday, or later)."""
    return _adjacent_session(day, "next")


def previous_trading_day(day: dt.date | str | pd.Timestamp) -> dt.date:
    """The last NYSE session strictly before ``day``."""
    return _adjacent_session(day, "previous")


def _adjacent_session(
    day: dt.date | str | pd.Timestamp, direction: Literal["next", "previous"]
) -> dt.date:
    """The session strictly after (``next``) or before (``previous``) ``day``."""
    label = _as_date(day)
    calendar = _calendar()
    session = calendar.date_to_session(label, direction=direction)
    if session == label:
        step = calendar.next_session if direction == "next" else calendar.previous_session
        session = step(session)
    return session.date()


def session_close(day: dt.date | str | pd.Timestamp) -> pd.Timestamp:
    """The closing time (UTC) of the session on ``day``; early closes included."""
    return _calendar().session_close(_as_date(day))


def last_completed_session(now: dt.datetime | pd.Timestamp) -> dt.date:
    """The latest session that had closed at ``now`` (timezone-aware; naive means UTC)."""
    moment = pd.Timestamp(now)
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
    candidate = _calendar().date_to_session(moment.tz_convert(None).normalize(), "previous")
    if session_close(candidate) > moment:
        candidate = _calendar().previous_session(candidate)
    return candidate.date()


def trading_days_between(start: dt.date | str, end: dt.date | str) -> int:
    """How many sessions lie after ``start`` up to and including ``end`` (0 if end <= start)."""
    first, last = _as_date(start), _as_date(end)
    if last <= first:
        return 0
    return len(_calendar().sessions_in_range(first + pd.Timedelta(days=1), last))


def trading_days(start: dt.date | str, end: dt.date | str) -> list[dt.date]:
    """Every session from ``start`` to ``end``, both included."""
    return [ts.date() for ts in _calendar().sessions_in_range(_as_date(start), _as_date(end))]
