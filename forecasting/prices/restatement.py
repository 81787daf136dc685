"""The restatement test used at ingest: has stored history changed in the source since?

A split restates every earlier price, a dividend re-adjustment every earlier ``adj_close``. When
stored and fetched bars differ beyond a tolerance on their overlap (``find_restatement``), the
daily flow fetches the source's whole history and ``judge_restatement`` decides whether the
stored bars may be replaced by it. docs/data.md ("Restatements") has the rule and the tolerance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.errors import RestatementError

RESTATED_COLUMNS = ("open", "high", "low", "close", "adj_close")
MAX_STEP = 0.10
"""Largest |ln(factor)| of a restatement that may end next to kept bars (see judge_restatement)."""


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


@dataclass(frozen=True)
class Resync:
    """A restatement accepted for storage: the stored bars it replaces and by what factors."""

    first_date: dt.date
    last_date: dt.date
    rows: int
    factors: tuple[tuple[str, float, float], ...]
    """``(column, smallest, largest)`` new / stored value over the restated rows, for each
    column that changed; smallest and largest are one factor unless a live source restated."""

    def __str__(self) -> str:
        return (
            f"{_factor_text(self.factors)} on {self.rows:,} stored bars from {self.first_date} "
            f"to {self.last_date}"
        )


def judge_restatement(
    stored: pd.DataFrame,
    fetched: pd.DataFrame,
    *,
    origin: str,
    live: bool,
    stored_until: dt.date | None = None,
    rtol: float = 1e-4,
) -> Resync | None:
    """Whether the stored bars may be replaced by the fetched ones where they differ.

    A split or dividend adjustment multiplies every bar before its date by one factor, and
    leaves the later bars alone. So a file's restatement is accepted when, on the dates both
    frames hold, the differing bars all come before the unchanged ones and each price column
    differs by one factor (within ``rtol``). The live source (Yahoo) is the reference the daily
    schedule follows: what it restates is accepted whatever the factors.

    Whatever the source, stored bars after the fetched ones are kept; when the restatement runs
    to the last fetched bar, the series would then step by its factor there. A dividend's step
    (within ``MAX_STEP``, about 10%) is accepted; a split's is refused.

    Parameters
    ----------
    stored
        Every stored bar on the dates ``fetched`` spans (a price frame).
    fetched
        The source's bars (a price frame).
    origin
        Where ``fetched`` came from, for messages (``csv:/data/NVDA.csv``).
    live
        Whether ``fetched`` came from the live source.
    stored_until
        The newest stored bar's date, to know whether bars are kept after the fetched ones.
    rtol
        Relative difference above which a value counts as changed, and the largest spread of
        one column's factors that still counts as one factor.

    Returns
    -------
    Resync or None
        The restated bars and their factors; ``None`` when no overlapping bar differs.

    Raises
    ------
    RestatementError
        The restatement of a file is not one adjustment, or would leave a split-sized step
        before kept bars; the message names the first date that shows it and what to do.
    """
    columns = list(RESTATED_COLUMNS)
    old = stored[columns].set_axis(pd.DatetimeIndex(stored.index).as_unit("ns"), axis=0)
    new = fetched[columns].set_axis(pd.DatetimeIndex(fetched.index).as_unit("ns"), axis=0)
    overlap = old.index.intersection(new.index)
    ratios = new.loc[overlap].to_numpy(dtype="float64") / old.loc[overlap].to_numpy(dtype="float64")
    changed = (np.abs(ratios - 1) > rtol).any(axis=1)
    if not changed.any():
        return None
    restated = ratios[changed]
    if not live:
        _check_one_adjustment(overlap, changed, ratios, origin, rtol)
    last = new.index[-1]
    if changed[-1] and overlap[-1] == last and stored_until and stored_until > last.date():
        _check_step(ratios[-1], last, stored_until, origin)
    factors = tuple(
        (column, float(restated[:, k].min()), float(restated[:, k].max()))
        for k, column in enumerate(columns)
        if (np.abs(restated[:, k] - 1) > rtol).any()
    )
    days = overlap[changed]
    return Resync(days[0].date(), days[-1].date(), int(changed.sum()), factors)


def _check_one_adjustment(
    overlap: pd.DatetimeIndex, changed: np.ndarray, ratios: np.ndarray, origin: str, rtol: float
) -> None:
    remedy = (
        "check that the file is adjusted like the stored history (--adjust-splits for a raw "
        "one), or re-sync from the live source with --source yahoo"
    )
    unchanged = np.flatnonzero(~changed)
    if unchanged.size and changed[unchanged[0] :].any():
        agree = unchanged[0]
        later = agree + int(np.argmax(changed[agree:]))
        raise RestatementError(
            f"{origin}: the bars differ from the stored ones on {overlap[later]:%Y-%m-%d} but "
            f"agree on the earlier {overlap[agree]:%Y-%m-%d}, which no split or dividend "
            f"adjustment does (it changes every bar before its date); {remedy}"
        )
    restated, days = ratios[changed], overlap[changed]
    for k, column in enumerate(RESTATED_COLUMNS):
        spread = np.abs(restated[:, k] / restated[0, k] - 1)
        if (spread > rtol).any():
            other = int(np.argmax(spread > rtol))
            raise RestatementError(
                f"{origin}: {column} differs from the stored bars by x{restated[0, k]:.6g} on "
                f"{days[0]:%Y-%m-%d} but by x{restated[other, k]:.6g} on "
                f"{days[other]:%Y-%m-%d}, not one adjustment factor; {remedy}"
            )


def _check_step(ratios: np.ndarray, last: pd.Timestamp, stored_until: dt.date, origin: str) -> None:
    steps = np.abs(np.log(ratios))
    if steps.max() <= MAX_STEP:
        return
    close = RESTATED_COLUMNS.index("close")
    k = close if steps[close] > MAX_STEP else int(np.argmax(steps))  # name close if it stepped
    raise RestatementError(
        f"{origin}: its bars end on {last:%Y-%m-%d}, restated by x{ratios[k]:.6g} in "
        f"{RESTATED_COLUMNS[k]}, but bars are stored to {stored_until}: replacing only its bars "
        f"would leave that step after {last:%Y-%m-%d}; read up to {stored_until} (no --as-of, "
        "a file that reaches it) and check that it is adjusted like the stored history "
        "(--adjust-splits for a raw one)"
    )


def _factor_text(factors: tuple[tuple[str, float, float], ...]) -> str:
    """``open, high, low, close x0.25; adj_close x0.2495``: columns sharing a factor grouped."""
    groups: dict[str, list[str]] = {}
    for column, low, high in factors:
        shown = f"x{low:.6g}" if f"{low:.6g}" == f"{high:.6g}" else f"x{low:.6g} to x{high:.6g}"
        groups.setdefault(shown, []).append(column)
    return "; ".join(f"{', '.join(columns)} {shown}" for shown, columns in groups.items())
