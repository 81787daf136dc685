"""How numbers read wherever people see them: money at any price level, percentages, blanks."""

from __future__ import annotations

import math

MISSING = "-"
"""What a value that is not there (None, NaN, pandas NA) reads as."""

SIGNIFICANT_DIGITS = 4
"""At least this many digits of a price below $1 survive: $0.2012, not $0.20."""

MAX_DECIMALS = 8


def is_missing(value: object) -> bool:
    """None, NaN and pandas' NA/NaT: a blank in a table, a dash in a sentence."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN is the only float unequal to itself
    except TypeError:  # pandas.NA refuses bool()
        return True


def decimals_for(scale: float | None) -> int:
    """Decimal places that keep ``SIGNIFICANT_DIGITS`` of an amount of size ``scale``.

    Two for a dollar or more (cents), more below: a $0.20 stock's $0.0031 error keeps its
    digits instead of reading $0.00.
    """
    if is_missing(scale) or abs(scale) >= 1 or scale == 0:
        return 2
    magnitude = math.floor(math.log10(abs(scale)))
    return min(max(2, SIGNIFICANT_DIGITS - 1 - magnitude), MAX_DECIMALS)


def money(value: float | None, *, like: float | None = None, missing: str = MISSING) -> str:
    """A dollar amount: ``$1,234.56``, ``$0.2012``, ``-$0.0031``; ``missing`` when absent.

    ``like`` sets the precision from another amount (a forecast's last close), so that the
    figures of one line read alike: ``$0.9987 - $1.0213``, not ``$0.9987 - $1.02``.
    """
    if is_missing(value):
        return missing
    decimals = decimals_for(value if like is None or is_missing(like) else like)
    sign = "-" if value < 0 and round(abs(value), decimals) != 0 else ""
    return f"{sign}${abs(value):,.{decimals}f}"


def percent(value: float | None, *, decimals: int = 1, missing: str = MISSING) -> str:
    """A share as a percentage: 0.948 -> ``94.8%``; ``missing`` when absent."""
    return missing if is_missing(value) else f"{value:.{decimals}%}"


def number(value: float | None, pattern: str = "{:.3f}", *, missing: str = MISSING) -> str:
    """Any other figure (skill, a loss) through ``pattern``; ``missing`` when absent."""
    return missing if is_missing(value) else pattern.format(value)
