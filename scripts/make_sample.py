"""Build the bundled sample, forecasting/data/nvda_sample.csv.gz, from the public NVDA history.

The original is ``Lusofona/Data/NVDA/NVDA_historical_data.csv`` in the public GitHub repository
luke-schumacher/ML_Final_Project (Yahoo's CSV export, 1999-01-22 to 2025-02-12). The sample is
that file minus two rows (``DROPPED``); every other line is copied byte for byte, then gzipped
with mtime 0 so that the output bytes depend on the input alone.

Usage::

    python scripts/make_sample.py ORIGINAL.csv            # write the sample
    python scripts/make_sample.py ORIGINAL.csv --check    # fail if the bundled file differs
    python scripts/make_sample.py ORIGINAL.csv --measure  # partial-bar false-positive rate
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

from forecasting.calendar import session_close
from forecasting.prices.partial_bars import (
    PARTIAL_LOOKBACK,
    PARTIAL_VOLUME_RATIO,
    partial_bar_reason,
)
from forecasting.prices.price_files import LINE_NUMBERS, read_price_csv
from forecasting.prices.validation import validate_prices

ORIGINAL_SHA256 = "4f2e3875e795e772fd9701c2950d74efbd32792d18c66c1caf321b55ecaf079d"
OUTPUT = Path(__file__).resolve().parents[1] / "forecasting" / "data" / "nvda_sample.csv.gz"
DROPPED = {
    b"2001-09-12": "empty row: the NYSE was closed after September 11",
    b"2025-02-12": "partial bar: saved during the session, about half a day's volume",
}


def build(original: bytes) -> bytes:
    """The gzipped sample: the original without the ``DROPPED`` rows, checked and validated."""
    digest = hashlib.sha256(original).hexdigest()
    if digest != ORIGINAL_SHA256:
        raise SystemExit(f"the original's sha256 is {digest}, expected {ORIGINAL_SHA256}")
    lines = original.splitlines(keepends=True)
    kept = [line for line in lines if line[:10] not in DROPPED]
    if len(lines) - len(kept) != len(DROPPED) or not lines[-1].startswith(b"2025-02-12,"):
        raise SystemExit("the rows to drop are not where expected; is this the right file?")
    text = b"".join(kept)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "nvda_sample.csv"
        path.write_bytes(text)
        frame = read_price_csv(path, ticker="NVDA")
    # The sample must pass every rule, the partial-last-row test included.
    validate_prices(
        frame,
        ticker="NVDA",
        origin="sample",
        lines=frame.attrs[LINE_NUMBERS],
        check_last_bar=True,
    )
    return gzip.compress(text, compresslevel=9, mtime=0)


def measure(sample: bytes) -> None:
    """Print how often a complete day would be flagged as partial were it the last row."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sample.csv.gz"
        path.write_bytes(sample)
        frame = read_price_csv(path, ticker="NVDA")
    volumes = frame["volume"].to_numpy()
    early = np.array(
        [session_close(day).tz_convert("America/New_York").hour < 16 for day in frame.index]
    )
    tested = range(PARTIAL_LOOKBACK, len(frame))
    reasons = [partial_bar_reason(volumes[: i + 1], early_close=early[i]) for i in tested]
    flagged = [frame.index[i].date() for i, reason in zip(tested, reasons, strict=True) if reason]
    print(f"complete days tested: {len(tested)} ({frame.index[PARTIAL_LOOKBACK].date()} on)")
    rate = len(flagged) / len(tested)
    print(f"flagged (ratio {PARTIAL_VOLUME_RATIO}, round lots): {len(flagged)} = {rate:.2%}")
    print(f"flagged by the round-lot test: {sum('multiple' in (r or '') for r in reasons)}")
    print(f"flagged days: {', '.join(map(str, flagged))}")
    median = np.array([np.median(volumes[i - PARTIAL_LOOKBACK : i]) for i in tested])
    ratio = volumes[PARTIAL_LOOKBACK:] / median
    regular = ~early[PARTIAL_LOOKBACK:]
    print(f"volume / median of the previous {PARTIAL_LOOKBACK}, {regular.sum()} regular days:")
    for threshold in (0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.60):
        below = int((ratio[regular] < threshold).sum())
        print(f"  below {threshold:.2f}: {below:4d} days = {below / regular.sum():.2%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("original", type=Path, help="NVDA_historical_data.csv (see the docstring)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="compare with --output, write nothing")
    parser.add_argument("--measure", action="store_true", help="print the false-positive rates")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    sample = build(args.original.read_bytes())
    if args.measure:
        measure(sample)
    if args.check:
        same = args.output.is_file() and args.output.read_bytes() == sample
        print(f"{args.output}: {'up to date' if same else 'DIFFERS from a fresh build'}")
        return 0 if same else 1
    if not args.measure:
        args.output.write_bytes(sample)
        digest = hashlib.sha256(sample).hexdigest()
        print(f"wrote {args.output} ({len(sample):,} bytes, sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
