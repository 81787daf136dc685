"""Prices and percentages as people read them, whatever the size of the price.

A $130 stock reads in cents ("$130.12"); a $0.20 stock keeps four significant digits
("$0.2034"), never "$0.20" for every day of its range, or "$0.00" for its errors.
"""

from __future__ import annotations

import math


def _missing(value) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True


def decimals_for(reference: float | None) -> int:
    """Decimals that show a price of the size of ``reference`` to at least four significant
    digits below $1, and to the cent above."""
    if _missing(reference) or float(reference) == 0:
        return 2
    size = abs(float(reference))
    if size >= 1:
        return 2
    return min(3 - math.floor(math.log10(size)), 10)


def money(value: float | None, *, like: float | None = None, missing: str = "-") -> str:
    """``$1,234.56``; below $1 in significant digits. ``like``: a price whose size sets the
    decimals (an error of a $130 stock in cents even when it is 4 cents)."""
    if _missing(value):
        return missing
    value = float(value)
    places = decimals_for(like if like is not None else value)
    sign = "-" if value < 0 and round(abs(value), places) != 0 else ""
    return f"{sign}${abs(value):,.{places}f}"


def money_range(low: float | None, high: float | None, *, like: float | None = None) -> str:
    """An interval: ``$125.00 - $135.50``."""
    if _missing(low) or _missing(high):
        return "-"
    reference = like if like is not None else min(abs(float(low)), abs(float(high)))
    return f"{money(low, like=reference)} - {money(high, like=reference)}"


def percent(value: float | None, *, places: int = 1, missing: str = "-") -> str:
    """A fraction as a percentage: 0.948 -> ``94.8%``."""
    return missing if _missing(value) else f"{float(value):.{places}%}"
