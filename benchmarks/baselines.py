"""Interval baselines on real data: naive + volatility conformal intervals against GARCH(1,1).

For the bundled NVDA history and the 50 watchlist tickers (``../shared/data/watchlist``), both
baselines of :mod:`forecasting.baselines` forecast, walk-forward, the closes of each series' last
``--days`` sessions (250), each from the closes up to the session before. Per series and pooled
over all series-days: 80% and 95% coverage, mean 95% width and mean 95% Winkler score (both in
percent of the base close, so that tickers can be pooled), and a Diebold-Mariano test on the daily
Winkler95 scores (GARCH minus naive + volatility; negative means GARCH scores better).

Nothing is tuned on the test days. ``--holdout 250`` cuts each series 250 sessions earlier, so the
same table is computed on the 250 sessions *before* the test days: compare parameter choices
(``--calibration-window``, ``--dist``, ...) there, then run once with ``--holdout 0``.

Usage::

    python benchmarks/baselines.py [--watchlist DIR] [--days 250] [--holdout 0] [--json]

A series with fewer returns than ``--garch-window`` before its first test day (a recent listing,
with ``--holdout``) has its GARCH fitted on all the returns it has. GARCH refits dominate the run
time (about a minute for 51 series on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.baselines import garch_forecasts, naive_volatility_forecasts
from forecasting.prices.sources import load_prices
from forecasting.scoring import diebold_mariano, winkler_score

DEFAULT_WATCHLIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "watchlist"
METHODS = ("naive_vol", "garch")


def series_list(watchlist: Path) -> list[tuple[str, str]]:
    """``(ticker, source)`` pairs: the bundled NVDA, then every CSV of the watchlist."""
    pairs = [("NVDA", "sample")]
    pairs += [(path.stem, f"csv:{path}") for path in sorted(watchlist.glob("*.csv"))]
    return pairs


def scored_days(forecasts: pd.DataFrame, close: pd.Series, as_of: pd.DatetimeIndex) -> pd.DataFrame:
    """Per test day: coverage flags, width and Winkler95 in percent of the base close."""
    rows = forecasts.reindex(as_of)
    if rows["base_close"].isna().any():
        missing = rows.index[rows["base_close"].isna()]
        raise RuntimeError(f"no forecast as of {missing[0].date()} ({len(missing)} days)")
    actual = close.shift(-1).reindex(as_of).to_numpy()
    base = rows["base_close"].to_numpy()
    lower80, upper80 = rows["lower_80"].to_numpy(), rows["upper_80"].to_numpy()
    lower95, upper95 = rows["lower_95"].to_numpy(), rows["upper_95"].to_numpy()
    return pd.DataFrame(
        {
            "inside_80": (actual >= lower80) & (actual <= upper80),
            "inside_95": (actual >= lower95) & (actual <= upper95),
            "width_95": 100 * (upper95 - lower95) / base,
            "winkler_95": 100 * winkler_score(actual, lower95, upper95, 0.95) / base,
        },
        index=as_of,
    )


def evaluate_series(close: pd.Series, arguments: argparse.Namespace) -> dict[str, pd.DataFrame]:
    """Both baselines' scored test days for one series."""
    if arguments.holdout:
        close = close.iloc[: -arguments.holdout]
    # Test targets are the last `days` sessions; their forecasts are made the session before.
    as_of = close.index[-arguments.days - 1 : -1]
    naive = naive_volatility_forecasts(
        close,
        volatility_window=arguments.volatility_window,
        calibration_window=arguments.calibration_window,
    )
    # A series listed too recently for a full GARCH window is fitted on all the returns it has.
    first_position = len(close) - arguments.days - 1
    garch = garch_forecasts(
        close,
        start=as_of[0].date(),
        window=min(arguments.garch_window, first_position),
        refit_every=arguments.refit_every,
        dist=arguments.dist,
    )
    return {
        "naive_vol": scored_days(naive, close, as_of),
        "garch": scored_days(garch, close, as_of),
    }


def summary(
    days: dict[str, pd.DataFrame], paired: dict[str, pd.Series] | None = None
) -> dict[str, float | int]:
    """One table row from the scored days of both methods.

    The Diebold-Mariano test compares the daily Winkler95 scores of ``days``, or of ``paired``
    if given (the pooled row passes the cross-sectional mean per test day, so that the same day
    on 51 correlated series does not count as 51 independent days).
    """
    row: dict[str, float | int] = {"n": len(days["naive_vol"])}
    for method in METHODS:
        scored = days[method]
        row[f"{method}_cov80"] = float(scored["inside_80"].mean())
        row[f"{method}_cov95"] = float(scored["inside_95"].mean())
        row[f"{method}_width95"] = float(scored["width_95"].mean())
        row[f"{method}_winkler95"] = float(scored["winkler_95"].mean())
    row["winkler_ratio"] = row["garch_winkler95"] / row["naive_vol_winkler95"]
    paired = paired or {method: days[method]["winkler_95"] for method in METHODS}
    test = diebold_mariano(paired["garch"], paired["naive_vol"], power=1)
    row["dm_statistic"], row["dm_p_value"] = test.statistic, test.p_value
    return row


def markdown(rows: dict[str, dict[str, float | int]]) -> str:
    """The table as GitHub markdown."""
    header = (
        "| series | n | cov80 nv | cov80 G | cov95 nv | cov95 G | width95 nv % | width95 G % "
        "| W95 nv % | W95 G % | W95 G/nv | DM | p |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['n']} | {row['naive_vol_cov80']:.3f} | {row['garch_cov80']:.3f} "
            f"| {row['naive_vol_cov95']:.3f} | {row['garch_cov95']:.3f} "
            f"| {row['naive_vol_width95']:.2f} | {row['garch_width95']:.2f} "
            f"| {row['naive_vol_winkler95']:.3f} | {row['garch_winkler95']:.3f} "
            f"| {row['winkler_ratio']:.3f} | {row['dm_statistic']:.2f} | {row['dm_p_value']:.3f} |"
        )
    return header + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchlist", type=Path, default=DEFAULT_WATCHLIST)
    parser.add_argument("--days", type=int, default=250, help="test sessions per series")
    parser.add_argument("--holdout", type=int, default=0, help="sessions cut off the end first")
    parser.add_argument("--volatility-window", type=int, default=20)
    parser.add_argument("--calibration-window", type=int, default=250)
    parser.add_argument("--garch-window", type=int, default=1000)
    parser.add_argument("--refit-every", type=int, default=20)
    parser.add_argument("--dist", default="t")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    started = time.perf_counter()
    rows: dict[str, dict[str, float | int]] = {}
    pooled: dict[str, list[pd.DataFrame]] = {method: [] for method in METHODS}
    for ticker, source in series_list(arguments.watchlist):
        close = load_prices(source, ticker)["close"]
        days = evaluate_series(close, arguments)
        rows[ticker] = summary(days)
        for method in METHODS:
            pooled[method].append(days[method].reset_index(drop=True))
        print(f"{ticker}: done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    per_day = {  # the mean over series of each test day's score (day k of the test period)
        method: pd.concat(frames).groupby(level=0)["winkler_95"].mean()
        for method, frames in pooled.items()
    }
    rows[f"pooled ({len(rows)} series)"] = summary(
        {method: pd.concat(frames, ignore_index=True) for method, frames in pooled.items()},
        per_day,
    )
    ratios = np.array([row["winkler_ratio"] for row in list(rows.values())[:-1]])
    settings = {name: value for name, value in vars(arguments).items() if name != "json"}
    print(f"settings: {settings}")
    print(markdown(rows))
    print(
        f"\nGARCH Winkler95 below naive + volatility's on {int((ratios < 1).sum())} of "
        f"{len(ratios)} series; median ratio {np.median(ratios):.3f}; "
        f"{time.perf_counter() - started:.0f} s"
    )
    if arguments.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
