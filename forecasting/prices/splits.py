"""Unadjusted stock splits in a price history: find them, and adjust the earlier bars if asked.

A price file is expected split-adjusted (docs/data.md, "The price frame"). A raw file is not: on
the day of a 4:1 split its close falls from 751.19 to 186.12, which a model would learn as a 75%
crash. A session is taken for an unadjusted split when the previous close divided by its close
is near a common split ratio and its open confirms it (the whole bar is on the new scale), or
when the file's own ``splits`` column lists a split that the prices did not absorb.

Measured on the bundled NVDA history and the 50 watchlist files (adjusted, 238,413 sessions):
no move comes within ``SPLIT_TOLERANCE`` of 2:1 or more (or their inverses). Moves of a third or
a half do happen on news (NVDA 2002-07-31, 2004-08-06, 2008-07-03; C, NFLX), indistinguishable
by price from 3:2 or 2:3; those sessions traded 2.35 to 19 times their usual dollar volume,
whereas a split leaves dollar volume where it was (0.49 to 2.2 times on the 27 real split days),
so 3:2 and 2:3 are taken for splits only below ``AMBIGUOUS_DOLLAR_VOLUME``. docs/data.md
("Unadjusted splits") has the details.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd

# Price falls by the ratio on the split day: previous close / close. Inverses: reverse splits.
_FORWARD = (2.0, 1.5, 3.0, 4.0, 5.0, 10.0, 20.0)
COMMON_SPLIT_RATIOS = (*_FORWARD, *(1 / ratio for ratio in _FORWARD))
SPLIT_TOLERANCE = 0.10
"""Largest |ln(move / ratio)| of the close and of the open for a session to match a ratio."""
AMBIGUOUS_RATIOS = (1.5, 1 / 1.5)
"""Ratios real one-day moves reach (a third down, a half up): confirmed by dollar volume."""
AMBIGUOUS_DOLLAR_VOLUME = 2.0
"""3:2 and 2:3 count as splits only below this multiple of the median dollar volume."""
DOLLAR_VOLUME_LOOKBACK = 20
MIN_LISTED_RATIO = 1.2
"""A listed ratio closer to 1 (a spin-off factor such as 1.0137) cannot be told from a normal
day by price; it is not checked."""
SPLITS_APPLIED = "splits_applied"
"""``DataFrame.attrs`` key under which ``validate_prices`` returns the splits it adjusted for."""


@dataclass(frozen=True)
class Split:
    """An unadjusted split found in a price frame.

    ``ratio`` is new shares per old share, as Yahoo's ``Stock Splits`` column gives it: 4.0 for
    a 4:1 split (the price is divided by 4), 0.1 for a 1:10 reverse split.
    """

    date: pd.Timestamp
    ratio: float
    position: int
    """Row of the split session in the frame; the bars before it are on the old scale."""
    listed: bool = False
    """Whether the file's ``splits`` column lists it."""

    @property
    def label(self) -> str:
        """``"4:1"``, ``"3:2"``, ``"1:10"``."""
        fraction = Fraction(self.ratio).limit_denominator(1000)
        return f"{fraction.numerator}:{fraction.denominator}"

    def __str__(self) -> str:
        return f"{self.label} split on {self.date:%Y-%m-%d}"


def find_unadjusted_splits(
    frame: pd.DataFrame, splits: Sequence[float] | None = None
) -> list[Split]:
    """Sessions where the prices jump by a split ratio that the earlier bars do not reflect.

    Parameters
    ----------
    frame
        A price frame (positive, finite ``open``, ``close``, ``volume``), sorted by date.
    splits
        The file's ``splits`` column, one value per row: the ratio on a split day, 0 or NaN
        otherwise. Listed ratios are checked with their own value, including uncommon ones
        (7:1); the common ratios are looked for on every session as well.

    Returns
    -------
    list of Split
        In date order; empty for a split-adjusted history.
    """
    if len(frame) < 2:
        return []
    close = frame["close"].to_numpy(dtype="float64")
    opening = frame["open"].to_numpy(dtype="float64")
    moves = np.log(close[:-1] / close[1:])
    gaps = np.log(close[:-1] / opening[1:])
    dollars = close * frame["volume"].to_numpy(dtype="float64")
    listed = _listed(splits, len(frame))
    found = []
    for position in range(1, len(frame)):
        move, gap = moves[position - 1], gaps[position - 1]
        ratio = listed.get(position)
        if ratio is not None:
            if _near(move, gap, ratio):
                found.append(Split(frame.index[position], ratio, position, listed=True))
            continue
        ratio = min(COMMON_SPLIT_RATIOS, key=lambda r: abs(move - math.log(r)))
        if not _near(move, gap, ratio):
            continue
        if ratio in AMBIGUOUS_RATIOS and not _usual_trading(dollars, position):
            continue  # a third down or a half up on heavy trading: news, not a split
        found.append(Split(frame.index[position], ratio, position))
    return found


def adjust_for_splits(frame: pd.DataFrame, splits: Sequence[Split]) -> pd.DataFrame:
    """The frame with the bars before each split put on the post-split scale.

    Parameters
    ----------
    frame
        A price frame.
    splits
        Splits found in it (:func:`find_unadjusted_splits`).

    Returns
    -------
    pandas.DataFrame
        A copy: before each split, open, high, low and close divided by its ratio and volume
        multiplied by it; ``adj_close`` too where it jumps by the same ratio that day (a raw
        adjusted close), and left alone where it is already smooth across the split.
    """
    adjusted = frame.copy()
    adj_close = frame["adj_close"].to_numpy(dtype="float64")
    for split in splits:
        before = adjusted.index < split.date
        adjusted.loc[before, ["open", "high", "low", "close"]] /= split.ratio
        adjusted.loc[before, "volume"] *= split.ratio
        adj_move = math.log(adj_close[split.position - 1] / adj_close[split.position])
        if abs(adj_move - math.log(split.ratio)) <= SPLIT_TOLERANCE:
            adjusted.loc[before, "adj_close"] /= split.ratio
    return adjusted


def _listed(splits: Sequence[float] | None, rows: int) -> dict[int, float]:
    if splits is None:
        return {}
    values = np.asarray(splits, dtype="float64")
    if len(values) != rows:
        raise ValueError(f"splits has {len(values)} entries for {rows} rows")
    usable = np.isfinite(values) & (values > 0)
    usable &= np.abs(np.log(np.where(usable, values, 1.0))) >= math.log(MIN_LISTED_RATIO)
    return {int(position): float(values[position]) for position in np.flatnonzero(usable)}


def _near(move: float, gap: float, ratio: float) -> bool:
    target = math.log(ratio)
    return abs(move - target) <= SPLIT_TOLERANCE and abs(gap - target) <= SPLIT_TOLERANCE


def _usual_trading(dollars: np.ndarray, position: int) -> bool:
    before = dollars[max(0, position - DOLLAR_VOLUME_LOOKBACK) : position]
    typical = float(np.median(before))
    return typical > 0 and dollars[position] < AMBIGUOUS_DOLLAR_VOLUME * typical
