"""Checks every price frame passes before it is stored.

A *price frame* has a tz-naive ``DatetimeIndex`` named ``date`` (midnight, one row per NYSE
session, sorted, unique) and exactly the float64 columns in ``PRICE_COLUMNS``. Open, high, low and
close are split-adjusted; ``adj_close`` is also dividend-adjusted (Yahoo's ``auto_adjust=False``).
Every error names the row: its date and, for files, its line number. docs/data.md lists the rules.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

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
from forecasting.prices.plausibility import PRICES, check_plausible
from forecasting.prices.rows import Rows, describe_columns
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
# (column that must be >=, column it bounds): the bar must contain its open and close.
_BAR_BOUNDS = [
    ("high", "low"),
    ("high", "open"),
    ("high", "close"),
    ("open", "low"),
    ("close", "low"),
]


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
    rows = Rows(origin, frame.index, lines)
    _check_order(frame, rows)
    keep = _empty_rows_to_drop(frame, rows, ticker)
    frame, rows = frame[keep], rows.keep(keep)
    split_column = None if splits is None else np.asarray(splits, dtype="float64")[keep]
    _check_sessions(frame, rows)
    _check_values(frame, rows)
    check_plausible(frame, rows, split_column)
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
    rows = Rows(origin, index, lines)
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


def _check_order(frame: pd.DataFrame, rows: Rows) -> None:
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


def _empty_rows_to_drop(frame: pd.DataFrame, rows: Rows, ticker: str) -> np.ndarray:
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


def _is_session(index: pd.DatetimeIndex, rows: Rows) -> np.ndarray:
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


def _check_sessions(frame: pd.DataFrame, rows: Rows) -> None:
    index = frame.index
    rows.fail(
        ~_is_session(index, rows),
        lambda i: f"the NYSE held no session on this day (a {index[i]:%A})",
        "delete the row, or check the dates are the exchange's local dates",
    )


def _check_values(frame: pd.DataFrame, rows: Rows) -> None:
    values = frame.to_numpy()
    columns = list(frame.columns)
    empty = np.isnan(values)
    rows.fail(
        empty.any(axis=1),
        lambda i: f"{describe_columns(columns, empty[i])} empty",
        "fill the value(s) from another source or delete the row",
    )
    infinite = np.isinf(values)
    rows.fail(
        infinite.any(axis=1),
        lambda i: f"{describe_columns(columns, infinite[i])} not a finite number",
        "fix or delete the row",
    )
    prices = frame[PRICES].to_numpy()
    bad = prices <= 0
    rows.fail(
        bad.any(axis=1),
        lambda i: f"{describe_columns(PRICES, bad[i], prices[i])} not positive",
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


def _unadjusted_splits(
    frame: pd.DataFrame, rows: Rows, splits: np.ndarray | None, adjust: bool
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


def _settled(frame: pd.DataFrame, rows: Rows, now: dt.datetime) -> np.ndarray:
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


def _check_last_bar(frame: pd.DataFrame, rows: Rows) -> None:
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
