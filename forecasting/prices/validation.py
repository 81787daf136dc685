"""Checks every price frame passes before it is stored.

A *price frame* has a tz-naive ``DatetimeIndex`` named ``date`` (midnight, one row per NYSE
session, sorted, unique) and exactly the float64 columns in ``PRICE_COLUMNS``. Open, high, low and
close are split-adjusted; ``adj_close`` is also dividend-adjusted (Yahoo's ``auto_adjust=False``).
Every error names the row: its date and, for files, its line number. docs/data.md lists the rules.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from forecasting.calendar import trading_days
from forecasting.errors import PriceValidationError
from forecasting.prices.partial_bars import (
    SETTLE_TIME,
    closes_early,
    partial_bar_reason,
    unsettled_sessions,
)
from forecasting.prices.splits import (
    SPLITS_APPLIED,
    Split,
    adjust_for_splits,
    find_unadjusted_splits,
)

logger = logging.getLogger(__name__)

PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")
INDEX_NAME = "date"
# Yahoo serves prices as float32; 1e-6 absorbs their rounding and nothing a real error produces.
OHLC_TOLERANCE = 1e-6
_PRICES = ["open", "high", "low", "close", "adj_close"]
# (column that must be >=, column it bounds): the bar must contain its open and close.
_BAR_BOUNDS = [
    ("high", "low"),
    ("high", "open"),
    ("high", "close"),
    ("open", "low"),
    ("close", "low"),
]

# Plausibility: what no real share does (docs/data.md, "Implausible values"). Measured on the
# bundled NVDA history and the 50 watchlist files (238,413 sessions, 1999-2025): prices 0.03 to
# 1,220, volume at most 9.2e9, a session's high at most 2.1 times its low, a close at most 1.87
# times (or 1/1.87 of) the one before, and no close that jumps and falls back by more than 1.29
# times both ways. The limits leave a wide margin above those; a value beyond them is a typo or
# a value in another unit (cents, thousands), and training on it would teach the model nonsense.
MAX_PRICE = 1e7
"""Dearest share ever traded is about 7.5e5 (Berkshire Hathaway A)."""
MAX_VOLUME = 1e12
"""Shares a session; the most active listed shares trade about 1e10 on their busiest day."""
MAX_BAR_RANGE = 10.0
"""Largest high / low of one session (a short squeeze reaches about 4)."""
SPIKE_FACTOR = 3.0
"""A close (or adjusted close) this many times away from the sessions on both sides, up then
down or down then up, is a one-bar spike: refused."""
MAX_DAILY_MOVE = 30.0
"""Largest close-to-close factor in one session, either way, where the file lists no split. It is
above every split ratio ``forecasting.prices.splits`` recognises (20:1, with its tolerance), so an
unadjusted split is still found and named as one."""
_PLAUSIBLE_REMEDY = (
    "fix or delete the row (a typo, or a value in another unit?); a download's glitch: save the "
    "prices as CSV, fix the row, and run with --source csv:PATH"
)


class _Rows:
    """Names rows in messages: ``origin line N (date)`` for files, ``origin (date)`` otherwise."""

    def __init__(self, origin: str, index: pd.DatetimeIndex, lines: Sequence[int] | None) -> None:
        self.origin, self.index = origin, index
        self.lines = None if lines is None else np.asarray(lines, dtype=np.int64)

    def name(self, position: int) -> str:
        day = f"{self.index[position]:%Y-%m-%d}"
        if self.lines is None:
            return f"{self.origin} ({day})"
        return f"{self.origin} line {self.lines[position]} ({day})"

    def ref(self, position: int) -> str:
        """A short reference to another row: its line, else its date."""
        day = f"{self.index[position]:%Y-%m-%d}"
        return day if self.lines is None else f"line {self.lines[position]} ({day})"

    def fail(self, mask: np.ndarray, problem: Callable[[int], str], remedy: str) -> None:
        """Raise for the first row in ``mask``; ``problem(position)`` describes what is wrong."""
        bad = np.flatnonzero(mask)
        if bad.size == 0:
            return
        others = bad.size - 1
        more = f" ({others} more {'row' if others == 1 else 'rows'} like it)" if others else ""
        raise PriceValidationError(f"{self.name(bad[0])}: {problem(bad[0])}; {remedy}{more}")

    def keep(self, mask: np.ndarray) -> _Rows:
        lines = None if self.lines is None else self.lines[mask]
        return _Rows(self.origin, self.index[mask], lines)


def validate_prices(
    frame: pd.DataFrame,
    *,
    ticker: str,
    origin: str = "prices",
    lines: Sequence[int] | None = None,
    now: dt.datetime | None = None,
    check_last_bar: bool = False,
    splits: Sequence[float] | None = None,
    adjust_splits: bool = False,
) -> pd.DataFrame:
    """Check a price frame and return a clean copy of it.

    Parameters
    ----------
    frame
        Bars with a date index and at least the columns in ``PRICE_COLUMNS``.
    ticker
        The ticker the bars belong to, for messages.
    origin
        What the rows came from, for messages (a file name, ``"Yahoo Finance NVDA"``).
    lines
        The file line number of each row, in order, so that messages can name it.
    now
        The fetch time (naive means UTC). The bar of a session that had not closed (and settled,
        ``forecasting.prices.partial_bars.SETTLE_TIME``) by then is dropped with a warning. ``None``
        skips this rule.
    check_last_bar
        Raise if the last row looks like a partial bar saved during its session (for files,
        whose capture time is unknown); see ``forecasting.prices.partial_bars.partial_bar_reason``.
    splits
        The file's split column, one value per row (ratio on a split day, else 0), if it has one.
    adjust_splits
        Put the bars before an unadjusted split on the post-split scale instead of refusing
        them (``forecasting.prices.splits``).

    Returns
    -------
    pandas.DataFrame
        The bars with exactly ``PRICE_COLUMNS`` as float64 and a ``date`` index. Rows dropped:
        an empty row on a day the NYSE was closed, and the bar of a session still open at ``now``.
        When splits were adjusted for, ``attrs[SPLITS_APPLIED]`` lists them (``Split``).

    Raises
    ------
    PriceValidationError
        On the first rule broken; the message names the row and says what to do.
    """
    for name, values in (("lines", lines), ("splits", splits)):
        if values is not None and len(values) != len(frame):
            raise ValueError(f"{name} has {len(values)} entries for {len(frame)} rows")
    frame = _standard_shape(frame, origin, lines)
    rows = _Rows(origin, frame.index, lines)
    _check_order(frame, rows)
    keep = _empty_rows_to_drop(frame, rows, ticker)
    frame, rows = frame[keep], rows.keep(keep)
    split_column = None if splits is None else np.asarray(splits, dtype="float64")[keep]
    _check_sessions(frame, rows)
    _check_values(frame, rows)
    _check_plausible(frame, rows, split_column)
    frame, applied = _unadjusted_splits(frame, rows, split_column, adjust_splits)
    if now is not None and len(frame):
        keep = _settled(frame, rows, now)
        frame, rows = frame[keep], rows.keep(keep)
    if check_last_bar and len(frame):
        _check_last_bar(frame, rows)
    _warn_missing_sessions(frame, origin)
    clean = frame.copy()
    clean.attrs = {SPLITS_APPLIED: tuple(applied)} if applied else {}
    return clean


def _standard_shape(frame: pd.DataFrame, origin: str, lines: Sequence[int] | None) -> pd.DataFrame:
    missing = [name for name in PRICE_COLUMNS if name not in frame.columns]
    if missing:
        raise PriceValidationError(
            f"{origin}: missing the column(s) {missing} (found {list(frame.columns)}); "
            f"a price frame needs {list(PRICE_COLUMNS)}"
        )
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is not None:
        raise PriceValidationError(
            f"{origin}: the index must be tz-naive dates (found {type(index).__name__}"
            f"{'' if getattr(index, 'tz', None) is None else ' in ' + str(index.tz)}); "
            "read files with forecasting.prices.price_files.read_price_csv"
        )
    rows = _Rows(origin, index, lines)
    rows.fail(
        np.asarray(index != index.normalize()),
        lambda i: f"timestamp {index[i]} is not a date at midnight",
        "this project takes daily bars, one row per session",
    )
    try:
        shaped = frame.loc[:, list(PRICE_COLUMNS)].astype("float64")
    except (TypeError, ValueError) as error:
        raise PriceValidationError(f"{origin}: a price column is not numeric ({error})") from None
    shaped.index = index.as_unit("ns").rename(INDEX_NAME)
    return shaped


def _check_order(frame: pd.DataFrame, rows: _Rows) -> None:
    days = frame.index.asi8
    step = np.concatenate([[1], np.diff(days)])  # the first row has nothing above it
    rows.fail(
        step == 0,
        lambda i: f"the date repeats the row before it, {rows.ref(i - 1)}",
        "delete one of the two rows",
    )
    rows.fail(
        step < 0,
        lambda i: f"the date comes before that of the row above it, {rows.ref(i - 1)}",
        "sort the rows by date, oldest first",
    )


def _empty_rows_to_drop(frame: pd.DataFrame, rows: _Rows, ticker: str) -> np.ndarray:
    """Keep-mask: an empty row is dropped if the NYSE was closed that day, an error otherwise."""
    empty = frame.isna().all(axis=1).to_numpy()
    sessions = _is_session(frame.index, rows)
    rows.fail(
        empty & sessions,
        lambda i: "every value is empty on an NYSE trading day",
        f"re-export the file or fill the row from another source of {ticker} prices",
    )
    for position in np.flatnonzero(empty):
        logger.warning(
            "%s: every value is empty and the NYSE held no session that day; dropping the row",
            rows.name(position),
        )
    return ~empty


def _is_session(index: pd.DatetimeIndex, rows: _Rows) -> np.ndarray:
    if len(index) == 0:
        return np.zeros(0, dtype=bool)
    try:
        sessions = pd.DatetimeIndex(trading_days(index.min(), index.max()))
    except ValueError as error:  # exchange_calendars' DateOutOfBounds names `start` or `end`
        late = "`end`" in str(error)
        position = int(np.argmax(index.asi8) if late else np.argmin(index.asi8))
        bound = "after the last day" if late else "before the first day (1990-01-02)"
        raise PriceValidationError(
            f"{rows.name(position)}: {bound} of the NYSE calendar this project uses; "
            "delete the rows outside it"
        ) from None
    return np.asarray(index.isin(sessions))


def _check_sessions(frame: pd.DataFrame, rows: _Rows) -> None:
    index = frame.index
    rows.fail(
        ~_is_session(index, rows),
        lambda i: f"the NYSE held no session on this day (a {index[i]:%A})",
        "delete the row, or check the dates are the exchange's local dates",
    )


def _check_values(frame: pd.DataFrame, rows: _Rows) -> None:
    values = frame.to_numpy()
    columns = list(frame.columns)
    empty = np.isnan(values)
    rows.fail(
        empty.any(axis=1),
        lambda i: f"{_listed(columns, empty[i])} empty",
        "fill the value(s) from another source or delete the row",
    )
    infinite = np.isinf(values)
    rows.fail(
        infinite.any(axis=1),
        lambda i: f"{_listed(columns, infinite[i])} not a finite number",
        "fix or delete the row",
    )
    prices = frame[_PRICES].to_numpy()
    bad = prices <= 0
    rows.fail(
        bad.any(axis=1),
        lambda i: f"{_listed(_PRICES, bad[i], prices[i])} not positive",
        "prices must be above zero: fix or delete the row",
    )
    volume = frame["volume"].to_numpy()
    rows.fail(
        volume < 0,
        lambda i: f"volume is negative ({volume[i]:g})",
        "fix or delete the row",
    )
    for upper, lower in _BAR_BOUNDS:
        top, bottom = frame[upper].to_numpy(), frame[lower].to_numpy()
        rows.fail(
            top < bottom * (1 - OHLC_TOLERANCE),
            lambda i, u=upper, lo=lower, t=top, b=bottom: f"{u} {t[i]:g} is below {lo} {b[i]:g}",
            "the bar is inconsistent: fix or delete the row",
        )


def _check_plausible(frame: pd.DataFrame, rows: _Rows, splits: np.ndarray | None) -> None:
    """Refuse values and moves no real share makes (consistent bars, so no other rule sees
    them): an absurd magnitude, a session wider than any real one, a one-bar spike that falls
    back, and a move beyond any split ratio that the file does not list as a split."""
    prices = frame[_PRICES].to_numpy()
    huge = prices > MAX_PRICE
    rows.fail(
        huge.any(axis=1),
        lambda i: (
            f"{_listed(_PRICES, huge[i], prices[i], verb=False)} "
            f"{'is' if huge[i].sum() == 1 else 'are'} beyond any real share price "
            f"(over {MAX_PRICE:g})"
        ),
        _PLAUSIBLE_REMEDY,
    )
    volume = frame["volume"].to_numpy()
    rows.fail(
        volume > MAX_VOLUME,
        lambda i: (
            f"volume {volume[i]:g} is beyond any real session's trading "
            f"(over {MAX_VOLUME:g} shares)"
        ),
        _PLAUSIBLE_REMEDY,
    )
    high, low = frame["high"].to_numpy(), frame["low"].to_numpy()
    rows.fail(
        high > MAX_BAR_RANGE * low,
        lambda i: (
            f"high {high[i]:g} is {high[i] / low[i]:.3g} times low {low[i]:g}; a real session "
            f"stays within {MAX_BAR_RANGE:g} times"
        ),
        _PLAUSIBLE_REMEDY,
    )
    if len(frame) < 2:
        return
    listed = np.zeros(len(frame), dtype=bool)
    if splits is not None:
        listed = np.nan_to_num(splits, nan=0.0) > 0
    for column in ("close", "adj_close"):
        _check_spikes(frame[column].to_numpy(), column, rows, listed)
    close = frame["close"].to_numpy()
    step = np.concatenate([[0.0], np.log(close[1:] / close[:-1])])
    rows.fail(
        (np.abs(step) > np.log(MAX_DAILY_MOVE)) & ~listed,
        lambda i: (
            f"close moves {_factor(step[i])} in one session, from {close[i - 1]:g} on "
            f"{rows.ref(i - 1)} to {close[i]:g}: more than any real move or split ratio"
        ),
        "fix the row; for a split, list it in the file's Splits column or use a split-adjusted "
        "file",
    )


def _check_spikes(values: np.ndarray, column: str, rows: _Rows, listed: np.ndarray) -> None:
    """Refuse a value that jumps by ``SPIKE_FACTOR`` or more and falls back the next session."""
    if len(values) < 3:
        return
    steps = np.log(values[1:] / values[:-1])
    into, out = steps[:-1], steps[1:]  # into and out of each row but the first and last
    limit = np.log(SPIKE_FACTOR)
    spike = (np.abs(into) >= limit) & (np.abs(out) >= limit) & (np.sign(into) != np.sign(out))
    spike &= ~(listed[1:-1] | listed[2:])  # a listed split explains a step
    mask = np.concatenate([[False], spike, [False]])
    rows.fail(
        mask,
        lambda i: (
            f"{column} jumps {_factor(steps[i - 1])} from {values[i - 1]:g} on "
            f"{rows.ref(i - 1)} to {values[i]:g} and falls back to {values[i + 1]:g} on "
            f"{rows.ref(i + 1)}: a one-session spike no real price makes"
        ),
        _PLAUSIBLE_REMEDY,
    )


def _factor(log_step: float) -> str:
    """``x100`` for a step up by 100 times, ``/4`` for a fall to a quarter."""
    factor = float(np.exp(abs(log_step)))
    shown = f"{factor:,.0f}" if factor >= 100 else f"{factor:.3g}"
    return f"{'x' if log_step > 0 else '/'}{shown}"


def _unadjusted_splits(
    frame: pd.DataFrame, rows: _Rows, splits: np.ndarray | None, adjust: bool
) -> tuple[pd.DataFrame, list[Split]]:
    """Refuse a split the earlier bars do not reflect, or adjust them for it when asked."""
    found = find_unadjusted_splits(frame, splits)
    if not found:
        return frame, []
    if adjust:
        for split in found:
            logger.warning(
                "%s: a %s split not adjusted in the earlier rows; adjusting the %d earlier bars "
                "(prices / %g, volume x %g) as --adjust-splits asks",
                rows.name(split.position),
                split.label,
                split.position,
                split.ratio,
                split.ratio,
            )
        return adjust_for_splits(frame, found), found
    by_position = {split.position: split for split in found}
    close, opening = frame["close"].to_numpy(), frame["open"].to_numpy()
    rows.fail(
        np.isin(np.arange(len(frame)), list(by_position)),
        lambda i: (
            f"close {close[i - 1]:g} -> {close[i]:g} (open {opening[i]:g}) is a "
            f"{by_position[i].label} split"
            f"{' (listed in the file)' if by_position[i].listed else ''} "
            "not adjusted in the earlier rows"
        ),
        "use a split-adjusted file (Yahoo's export is), or run with --adjust-splits to put "
        "the earlier bars on the new scale",
    )
    return frame, []


def _listed(
    columns: Sequence[str],
    mask: np.ndarray,
    values: np.ndarray | None = None,
    *,
    verb: bool = True,
) -> str:
    """``"low (0), adj_close (-1) are"``; without ``verb``, ``"low 0, adj_close -1"``."""
    names = [
        name
        if values is None
        else f"{name} {values[k]:g}"
        if not verb
        else f"{name} ({values[k]:g})"
        for k, name in enumerate(columns)
        if mask[k]
    ]
    if not verb:
        return ", ".join(names)
    return ", ".join(names) + (" is" if len(names) == 1 else " are")


def _settled(frame: pd.DataFrame, rows: _Rows, now: dt.datetime) -> np.ndarray:
    """Keep-mask without the bar of a session that had not closed and settled at ``now``."""
    moment = pd.Timestamp(now)
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
    unexpected = unsettled_sessions(frame.index, moment)
    keep = np.ones(len(frame), dtype=bool)
    if not unexpected.any():
        return keep
    last = len(frame) - 1
    unexpected[last] = False  # only the last bar may be from a session still open
    rows.fail(
        unexpected,
        lambda i: f"the session had not closed yet at {moment:%Y-%m-%d %H:%M} UTC",
        "check the dates, and the computer's clock",
    )
    logger.warning(
        "%s: the session had not closed (plus %d minutes to settle) at %s; dropping this "
        "partial bar, the next run picks up the complete one",
        rows.name(last),
        SETTLE_TIME.seconds // 60,
        f"{moment:%Y-%m-%d %H:%M} UTC",
    )
    keep[last] = False
    return keep


def _check_last_bar(frame: pd.DataFrame, rows: _Rows) -> None:
    early_close = closes_early(frame.index[-1])
    reason = partial_bar_reason(frame["volume"].to_numpy(), early_close=early_close)
    if reason is None:
        return
    previous = f"{frame.index[-2]:%Y-%m-%d}" if len(frame) > 1 else "the day before"
    raise PriceValidationError(
        f"{rows.name(len(frame) - 1)}: the last row looks like a partial bar saved before the "
        f"session closed ({reason}); delete the row or run with --as-of {previous}, "
        "or export the file again after the close"
    )


def _warn_missing_sessions(frame: pd.DataFrame, origin: str) -> None:
    if len(frame) < 2:
        return
    expected = pd.DatetimeIndex(trading_days(frame.index[0], frame.index[-1]))
    missing = expected.difference(frame.index)
    if len(missing):
        shown = ", ".join(f"{day:%Y-%m-%d}" for day in missing[:5])
        logger.warning(
            "%s: %d NYSE session(s) have no row (%s%s); returns across them span several days",
            origin,
            len(missing),
            shown,
            ", ..." if len(missing) > 5 else "",
        )
