"""The argument check the scores share: one-dimensional float arrays of one length."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def aligned(*arrays: npt.ArrayLike) -> tuple[np.ndarray, ...]:
    """The arrays as float64, after checking that they are 1-D, non-empty and of one length."""
    values = tuple(np.asarray(array, dtype="float64") for array in arrays)
    if any(value.ndim != 1 for value in values):
        raise ValueError("inputs must be one-dimensional")
    if len({len(value) for value in values}) != 1 or len(values[0]) == 0:
        raise ValueError("inputs must be non-empty and of equal length")
    return values
