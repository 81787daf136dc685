"""The restatement test used at ingest: has stored history changed in the source since?

A split restates every earlier price, a dividend re-adjustment every earlier ``adj_close``. When
stored and fetched bars differ beyond a tolerance on their overlap, the daily flow re-syncs the
whole history. docs/data.md ("Restatements") has the tolerance's reasoning.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Restatement:
    """Stored and fetched history disagree on their overlap: a split or dividend re-adjustment."""

    first_date: dt.date
    rows: int
    overlap: int
    max_relative_difference: float

    def __str__(self) -> str:
        return (
            f"{self.rows} of {self.overlap} overlapping rows differ from {self.first_date} on "
            f"(largest relative difference {self.max_relative_difference:.3g})"
        )


def find_restatement(
    stored: pd.DataFrame, fetched: pd.DataFrame, *, rtol: float = 1e-4
) -> Restatement | None:
    """Whether history was restated: close or adj_close differ on the dates both frames hold.

    Parameters
    ----------
    stored
        Bars already stored (at least ``close`` and ``adj_close``, indexed by date).
    fetched
        Bars just fetched, same shape.
    rtol
        Relative difference above which a value counts as changed. Yahoo's float32 rounding is
        about 1e-7; a split moves prices by a factor, a dividend re-adjustment moves adj_close by
        dividend / price (NVDA's $0.01 a quarter is about 7e-5 at $130, below the default).

    Returns
    -------
    Restatement or None
        The first differing date, how many overlapping rows differ and the largest relative
        difference; ``None`` when nothing differs or the frames do not overlap.
    """
    columns = ["close", "adj_close"]
    for name, frame in (("stored", stored), ("fetched", fetched)):
        if missing := [c for c in columns if c not in frame.columns]:
            raise ValueError(f"{name} prices lack the column(s) {missing}")
    old = stored[columns].set_axis(pd.DatetimeIndex(stored.index).as_unit("ns"), axis=0)
    new = fetched[columns].set_axis(pd.DatetimeIndex(fetched.index).as_unit("ns"), axis=0)
    overlap = old.index.intersection(new.index)
    if len(overlap) == 0:
        return None
    before = old.loc[overlap].to_numpy(dtype="float64")
    after = new.loc[overlap].to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.abs(after - before) / np.abs(before)
    # A value present on one side only is a change too; both empty is not.
    relative = np.where(np.isnan(before) & np.isnan(after), 0.0, relative)
    relative = np.where(np.isnan(relative), np.inf, relative).max(axis=1)
    changed = relative > rtol
    if not changed.any():
        return None
    return Restatement(
        first_date=overlap[np.argmax(changed)].date(),
        rows=int(changed.sum()),
        overlap=len(overlap),
        max_relative_difference=float(relative.max()),
    )
