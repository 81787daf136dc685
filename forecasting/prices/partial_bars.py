"""Whether a daily bar is complete, or a partial one taken before its session closed and settled.

Two tests, one per situation (docs/data.md, "A partial last bar"): when the fetch time is known,
a bar whose session had not closed, plus ``SETTLE_TIME``, is unsettled (``unsettled_sessions``);
for a file, whose capture time is unknown, the last row's volume is compared with the previous
sessions' (``partial_bar_reason``). ``forecasting.prices.validation`` turns both into its
warnings and errors.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from forecasting.calendar import session_close

# Yahoo's daily bar keeps moving for minutes after the bell (closing auction, late prints);
# yfinance itself treats data younger than 30 minutes as not final.
SETTLE_TIME = dt.timedelta(minutes=30)
_NEW_YORK = "America/New_York"

# The partial-bar test for files (docs/data.md has the measurement behind these numbers).
PARTIAL_LOOKBACK = 20
PARTIAL_VOLUME_RATIO = 0.35
ROUND_LOT = 100


def unsettled_sessions(index: pd.DatetimeIndex, moment: pd.Timestamp) -> np.ndarray:
    """Mask of the days in ``index`` whose session had not closed and settled at ``moment``.

    Parameters
    ----------
    index
        Session dates, tz-naive midnight.
    moment
        The fetch time, tz-aware in UTC.

    Returns
    -------
    numpy.ndarray
        One bool per day: ``True`` where the session's close plus ``SETTLE_TIME`` is after
        ``moment``.
    """
    # Only the newest rows can be unsettled; the calendar is asked about those alone.
    today = moment.tz_localize(None).normalize()
    recent = np.flatnonzero(index >= today - pd.Timedelta(days=4))
    unsettled = np.zeros(len(index), dtype=bool)
    unsettled[[i for i in recent if session_close(index[i]) + SETTLE_TIME > moment]] = True
    return unsettled


def closes_early(day: pd.Timestamp) -> bool:
    """Whether the NYSE session of ``day`` closed before 16:00 New York (e.g. 13:00)."""
    return session_close(day).tz_convert(_NEW_YORK).hour < 16


def partial_bar_reason(volumes: np.ndarray, *, early_close: bool) -> str | None:
    """Why the last of ``volumes`` looks like an intraday snapshot, or ``None`` if it does not.

    Two signs, each measured on NVDA's 6,555 complete days (docs/data.md): the volume breaks the
    round lots of the previous sessions (Yahoo reports complete days in hundreds; never broken
    by a complete day), or it is below ``PARTIAL_VOLUME_RATIO`` times their median (0.29% of
    complete days, early closes excluded since they trade less).

    Parameters
    ----------
    volumes
        The volumes of consecutive sessions, oldest first; the last is tested.
    early_close
        Whether the last session closed early (13:00 New York), which exempts the median test.

    Returns
    -------
    str or None
        The reason, for a message; ``None`` with fewer than ``PARTIAL_LOOKBACK`` earlier sessions.
    """
    if len(volumes) <= PARTIAL_LOOKBACK:
        return None
    last, previous = volumes[-1], volumes[-PARTIAL_LOOKBACK - 1 : -1]
    if np.all(previous % ROUND_LOT == 0) and last % ROUND_LOT != 0:
        return (
            f"volume {last:,.0f} is not a multiple of {ROUND_LOT}, unlike the previous "
            f"{PARTIAL_LOOKBACK} sessions'"
        )
    median = float(np.median(previous))
    if not early_close and median > 0 and last < PARTIAL_VOLUME_RATIO * median:
        return (
            f"volume {last:,.0f} is {last / median:.2f} times the median of the previous "
            f"{PARTIAL_LOOKBACK} sessions"
        )
    return None
