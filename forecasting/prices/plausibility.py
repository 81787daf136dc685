"""Plausibility: values and moves no real share makes, refused before a bar is stored.

Consistent bars (high over low, positive prices) pass every other rule of
``forecasting.prices.validation``; these catch a typo or a value in another unit (cents,
thousands) that training would learn from. docs/data.md, "Implausible values".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.prices.rows import Rows, describe_columns

PRICES = ["open", "high", "low", "close", "adj_close"]
"""The price columns of a price frame (all but volume)."""

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


def check_plausible(frame: pd.DataFrame, rows: Rows, splits: np.ndarray | None) -> None:
    """Refuse values and moves no real share makes (consistent bars, so no other rule sees
    them): an absurd magnitude, a session wider than any real one, a one-bar spike that falls
    back, and a move beyond any split ratio that the file does not list as a split."""
    prices = frame[PRICES].to_numpy()
    huge = prices > MAX_PRICE
    rows.fail(
        huge.any(axis=1),
        lambda i: (
            f"{describe_columns(PRICES, huge[i], prices[i], verb=False)} "
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


def _check_spikes(values: np.ndarray, column: str, rows: Rows, listed: np.ndarray) -> None:
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
