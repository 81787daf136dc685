"""Measure the split detector and the volume findings on split-adjusted histories.

Reproduces the numbers in docs/data.md ("Unadjusted splits", "Volume anomalies"): every
session of the bundled sample and of each file given is judged as the checks would judge it.

    python scripts/measure_data_checks.py /work/shared/data/watchlist/*.csv

A file's ticker is its name (``AMD.csv`` -> AMD); its ``splits`` column is used where it has one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.config import DriftConfig
from forecasting.monitoring.quality import VOLUME_MEDIAN_SESSIONS
from forecasting.prices.price_files import SPLITS, read_price_csv
from forecasting.prices.sources import load_prices
from forecasting.prices.splits import find_unadjusted_splits


def histories(paths: list[Path]) -> list[tuple[str, pd.DataFrame, tuple[float, ...] | None]]:
    """(ticker, validated bars, splits column) of the sample and of each file."""
    found = [("NVDA", load_prices("sample"), None)]
    for path in paths:
        ticker = path.name.split(".")[0].upper()
        splits = read_price_csv(path, ticker=ticker).attrs.get(SPLITS)
        found.append((ticker, load_prices(f"csv:{path}", ticker), splits))
    return found


def volume_jumps(volume: np.ndarray, limit: float) -> int:
    """Sessions whose volume is more than ``limit`` times the median before it, or below."""
    count = 0
    for position in range(1, len(volume)):
        median = np.median(volume[max(0, position - VOLUME_MEDIAN_SESSIONS) : position])
        if volume[position] > 0 and median > 0:
            count += max(volume[position] / median, median / volume[position]) > limit
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="split-adjusted price CSV files")
    args = parser.parse_args(argv)
    config = DriftConfig()
    totals = {"sessions": 0, "false splits": 0, "zero volumes": 0, "volume jumps": 0}
    for ticker, prices, splits in histories(args.files):
        volume = prices["volume"].to_numpy()
        false_splits = find_unadjusted_splits(prices, splits)
        for split in false_splits:
            print(f"{ticker}: {split} (false positive)")
        totals["sessions"] += len(prices)
        totals["false splits"] += len(false_splits)
        totals["zero volumes"] += int((volume == 0).sum())
        totals["volume jumps"] += volume_jumps(volume, config.volume_jump_ratio)
    print(", ".join(f"{name}: {value:,}" for name, value in totals.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
