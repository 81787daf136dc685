"""Naming the rows of a price frame in one-line messages: its file's line and its date."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from forecasting.errors import PriceValidationError


class Rows:
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

    def keep(self, mask: np.ndarray) -> Rows:
        lines = None if self.lines is None else self.lines[mask]
        return Rows(self.origin, self.index[mask], lines)


def describe_columns(
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
