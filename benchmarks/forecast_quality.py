"""Walk-forward forecast quality of what the product serves, against naive and GARCH(1,1).

    python -m benchmarks.forecast_quality [--tickers NVDA ABNB ...] [--sessions 250] [--jobs 2]
        [--out forecast_quality.json]

For each series, the real ``backfill`` flow (every setting at its default unless the
environment says otherwise) runs the daily pipeline as of each of the ``--sessions`` sessions
before the series' last one, into the series' own SQLite file: so the forecast for each of the
last ``--sessions`` sessions is made from the closes up to the session before, by the model the
policy had that day, exactly as the product serves it. The benchmark then reads the stored rows:
the served forecast (``kind = 'forecast'``), the LSTM's and the naive + volatility baseline's own
forecasts (``kind = 'contender'``, method ``lstm`` / ``naive``) and the model versions; GARCH(1,1)
intervals of the same days come from :func:`benchmarks.baselines.evaluate_series`. Actual closes
come from the source itself (the store holds bars only up to the last as-of day).

Per series and pooled:

- **served**: skill (RMSE / naive RMSE of prices); Diebold-Mariano statistic and p-value of the
  served forecast against naive on **squared errors of log returns** (negative: served better;
  the pooled test uses the cross-series mean loss of each test day, so that one day on eleven
  correlated series does not count as eleven independent days; the pooled skill is likewise on
  log returns, since dollar errors of different stocks do not pool); share of days naive served;
- **LSTM staleness**: sessions between the serving model's ``model_versions.train_end`` and the
  as-of date, max and mean;
- **intervals** of the LSTM, the naive + volatility baseline and GARCH(1,1): 80% and 95%
  coverage, mean 95% width and mean Winkler95 score, both in percent of the base close.

Series (chosen before any result was seen): the bundled NVDA and every fifth ticker of the
watchlist in alphabetical order, starting with the first (ABNB AVGO COST DOW IBM LLY MS PEP QCOM
UNH); ABNB (listed 2020-12) and DOW (2019-03) are the short histories.

Nothing is tuned here: the benchmark's test days are the last ``--sessions`` of each series and
every setting is the product's default. Each series runs in its own process (its own database,
Prefect home and settings); with ``--jobs N > 1``, N at a time, TensorFlow on one thread each.
Results go to ``--out`` after each series; a rerun skips the series already there (and resumes
an interrupted backfill from its SQLite file under ``--work-dir``), then prints the table, so the
same command rebuilds the table without training anything. Long: each series is ~250 sessions
of real training (see docs/benchmarks.md for the measured time). For a smoke test, shrink the
model through the environment, e.g. ``NVDA_FORECAST_TRAINING__LAYERS=1
NVDA_FORECAST_TRAINING__UNITS=4 NVDA_FORECAST_TRAINING__MAX_EPOCHS=2`` with ``--sessions 20``.
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.backfill import isolate_process, quiet_imports, run_backfill
from benchmarks.baselines import DEFAULT_WATCHLIST, evaluate_series, scored_days, series_list
from forecasting.scoring import diebold_mariano

INTERVAL_METHODS = ("lstm", "naive", "garch")
SCORES = ("inside_80", "inside_95", "width_95", "winkler_95")
GARCH = {"garch_window": 1000, "refit_every": 20, "dist": "t"}  # garch_forecasts' defaults


def default_series(watchlist: Path) -> list[str]:
    """NVDA, then every fifth watchlist ticker in alphabetical order, from the first."""
    tickers = sorted(path.stem for path in watchlist.glob("*.csv"))
    return ["NVDA", *tickers[::5]]


def experiment_settings(sessions: int) -> dict[str, Any]:
    """What the results depend on besides the data: a resumed run must not mix settings."""
    from flows.settings import Settings

    settings = Settings()
    return {
        "sessions": sessions,
        "features": settings.features.model_dump(),
        "training": settings.training.model_dump(),
        "serving": settings.serving.model_dump(),
        "retrain_every": settings.retrain_every,
        "promotion_tolerance": settings.promotion_tolerance,
        "garch": GARCH,
    }


def stored_rows(ticker: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[int, Any]]:
    """The served and contender forecasts of the settings' database, and each model's
    ``train_end`` by version id."""
    from db.engine import get_engine, unit_of_work
    from db.repository import list_model_versions, read_predictions
    from flows.settings import get_settings

    with unit_of_work(get_engine(get_settings().database_url)) as session:
        served = read_predictions(session=session, ticker=ticker, kind="forecast")
        contenders = read_predictions(session=session, ticker=ticker, kind="contender")
        ends = {v.id: v.train_end for v in list_model_versions(session=session, ticker=ticker)}
    return served, contenders, ends


def _by_as_of(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.set_index(pd.DatetimeIndex(rows["as_of_date"], name="as_of")).sort_index()


def score_series(
    ticker: str, source: str, sessions: int, work_dir: Path, threads: int | None
) -> dict[str, Any]:
    """Backfill one series into its own store and score its last ``sessions`` forecasts.

    Runs in a worker process: it points the process's settings and Prefect home at
    ``work_dir / ticker`` first.
    """
    isolate_process(work_dir / ticker, threads=threads)
    from flows.settings import get_settings
    from forecasting.calendar import trading_days_between
    from forecasting.prices.sources import load_prices

    started = time.perf_counter()
    close = load_prices(source, ticker)["close"]
    as_of = close.index[-sessions - 1 : -1]
    summary, wall = run_backfill(ticker, source, as_of[0].date(), as_of[-1].date())
    served, contenders, train_ends = stored_rows(summary.ticker)
    settings = get_settings()
    baselines = evaluate_series(
        close,
        argparse.Namespace(
            holdout=0,
            days=sessions,
            volatility_window=settings.features.volatility_window,
            calibration_window=settings.serving.calibration_window,
            **GARCH,
        ),
    )
    served = _by_as_of(served).reindex(as_of)
    lstm = _by_as_of(contenders[contenders["method"] == "lstm"]).reindex(as_of)
    naive = _by_as_of(contenders[contenders["method"] == "naive"]).reindex(as_of)
    if served["predicted_close"].isna().any() or lstm["predicted_close"].isna().any():
        raise RuntimeError(f"{ticker}: the store lacks forecasts of some benchmark days")
    actual = close.shift(-1).reindex(as_of)
    stale = [
        trading_days_between(train_ends[int(version)], day.date())
        for version, day in zip(lstm["model_version_id"], as_of, strict=True)
    ]
    days = pd.DataFrame(
        {
            "base_close": served["base_close"],
            "actual_close": actual,
            "served_close": served["predicted_close"],
            "lstm_close": lstm["predicted_close"],
            "naive_served": served["method"] == "naive",
            "staleness": stale,
        },
        index=as_of,
    )
    scored = {
        "lstm": scored_days(lstm, close, as_of),
        "naive": scored_days(naive, close, as_of),
        "garch": baselines["garch"],
    }
    for method, frame in scored.items():
        for column in SCORES:
            days[f"{method}_{column}"] = frame[column]
    # The stored naive contender must be forecasting.baselines' own, day for day.
    mismatch = float((scored["naive"]["width_95"] - baselines["naive_vol"]["width_95"]).abs().max())
    return {
        "ticker": ticker,
        "source": source,
        "days": {
            "as_of": [day.date().isoformat() for day in as_of],
            **{name: days[name].astype(float).tolist() for name in days.columns},
        },
        "naive_width_mismatch": mismatch,
        "backfill": {
            "wall_s": round(wall, 1),
            "ran": summary.ran,
            "actions": summary.actions,
            "served_by": summary.served_by,
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def _days(result: dict[str, Any]) -> pd.DataFrame:
    days = result["days"]
    return pd.DataFrame({k: v for k, v in days.items() if k != "as_of"}, index=days["as_of"])


def row(frames: list[pd.DataFrame]) -> dict[str, float]:
    """One table row: per series if ``frames`` has one frame, pooled over series-days if more."""
    from forecasting.scoring import point_metrics

    days = pd.concat(frames, ignore_index=True)
    base, actual = days["base_close"].to_numpy(), days["actual_close"].to_numpy()
    served_error = np.log(days["served_close"].to_numpy() / actual)
    naive_error = np.log(base / actual)
    if len(frames) == 1:
        skill = (
            point_metrics(base, actual, days["served_close"]).rmse
            / point_metrics(base, actual, base).rmse
        )
        test = diebold_mariano(served_error, naive_error, power=2)
    else:  # prices of different stocks do not pool: log returns, and day-k cross-series means
        skill = math.sqrt(np.mean(served_error**2) / np.mean(naive_error**2))
        losses = [
            pd.DataFrame(
                {
                    "served": np.log(f["served_close"] / f["actual_close"]) ** 2,
                    "naive": np.log(f["base_close"] / f["actual_close"]) ** 2,
                }
            ).reset_index(drop=True)
            for f in frames
        ]
        per_day = pd.concat(losses).groupby(level=0).mean()
        test = diebold_mariano(per_day["served"], per_day["naive"], power=1)
    values = {
        "n": len(days),
        "skill": skill,
        "dm": test.statistic,
        "p": test.p_value,
        "naive_share": float(days["naive_served"].mean()),
        "stale_max": float(days["staleness"].max()),
        "stale_mean": float(days["staleness"].mean()),
    }
    for method in INTERVAL_METHODS:
        for column in SCORES:
            values[f"{method}_{column}"] = float(days[f"{method}_{column}"].mean())
    values["winkler_ratio"] = values["lstm_winkler_95"] / values["naive_winkler_95"]
    return values


def table(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Rows per series (in the order given), then pooled over the watchlist and over all."""
    frames = {ticker: _days(result) for ticker, result in results.items()}
    rows = {ticker: row([frame]) for ticker, frame in frames.items()}
    watchlist = [frame for ticker, frame in frames.items() if ticker != "NVDA"]
    if len(watchlist) > 1 and len(watchlist) < len(frames):
        rows[f"pooled watchlist ({len(watchlist)})"] = row(watchlist)
    if len(frames) > 1:
        rows[f"pooled all ({len(frames)})"] = row(list(frames.values()))
    return rows


def markdown(rows: dict[str, dict[str, float]]) -> str:
    """Two GitHub tables: the served forecast, then the intervals of the three forecasters."""
    served = [
        "| series | n | served skill | DM | p | naive served | LSTM stale max | mean |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    intervals = [
        "| series | cov80 L | N | G | cov95 L | N | G | width95 % L | N | G "
        "| W95 % L | N | G | W95 L/N |",
        "|---|" + "---:|" * 13,
    ]
    for name, r in rows.items():
        served.append(
            f"| {name} | {r['n']} | {r['skill']:.3f} | {r['dm']:.2f} | {r['p']:.3f} "
            f"| {r['naive_share']:.2f} | {r['stale_max']:.0f} | {r['stale_mean']:.1f} |"
        )
        cells = [
            f"{r[f'{method}_{column}']:{spec}}"
            for column, spec in zip(SCORES, (".3f", ".3f", ".2f", ".3f"), strict=True)
            for method in INTERVAL_METHODS
        ]
        intervals.append(f"| {name} | " + " | ".join(cells) + f" | {r['winkler_ratio']:.3f} |")
    return "\n".join(served) + "\n\n" + "\n".join(intervals)


def load(out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The results saved so far, checked to come from the same settings."""
    if not out.exists():
        return {"settings": settings, "series": {}}
    saved = json.loads(out.read_text())
    if saved["settings"] != settings:
        raise SystemExit(
            f"{out} holds results of other settings ({saved['settings']}); "
            "use another --out or delete it"
        )
    return saved


def save(out: Path, saved: dict[str, Any]) -> None:
    """Write the results atomically (an interrupted run keeps the file whole)."""
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps(saved, indent=1))
    partial.replace(out)


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", nargs="+", help="NVDA (bundled) and watchlist tickers")
    parser.add_argument("--sessions", type=int, default=250, help="test sessions per series")
    parser.add_argument("--jobs", type=int, default=1, help="series run in parallel processes")
    parser.add_argument("--watchlist", type=Path, default=DEFAULT_WATCHLIST)
    parser.add_argument("--out", type=Path, default=Path("forecast_quality.json"))
    parser.add_argument(
        "--work-dir", type=Path, help="series' databases (default: --out's name + '.stores')"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    sources = dict(series_list(arguments.watchlist))
    tickers = arguments.tickers or default_series(arguments.watchlist)
    unknown = [ticker for ticker in tickers if ticker not in sources]
    if unknown:
        raise SystemExit(f"not in the watchlist: {unknown}")
    work_dir = arguments.work_dir or arguments.out.with_name(arguments.out.name + ".stores")
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    saved = load(arguments.out, experiment_settings(arguments.sessions))
    todo = [ticker for ticker in tickers if ticker not in saved["series"]]
    threads = 1 if arguments.jobs > 1 else None
    jobs = [(t, sources[t], arguments.sessions, work_dir.resolve(), threads) for t in todo]
    started = time.perf_counter()
    if jobs:
        # A fresh process per series: TensorFlow is not fork-safe, and settings are per process.
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(arguments.jobs, len(jobs)), maxtasksperchild=1) as pool:
            for result in pool.imap_unordered(_score, jobs):
                elapsed = f"{time.perf_counter() - started:.0f} s in all"
                if "error" in result:
                    print(
                        f"{result['ticker']} FAILED ({elapsed}): {result['error']}", file=sys.stderr
                    )
                    continue
                saved["series"][result["ticker"]] = result
                save(arguments.out, saved)
                print(f"{result['ticker']}: {result['seconds']:.0f} s ({elapsed})", file=sys.stderr)
    results = {ticker: saved["series"][ticker] for ticker in tickers if ticker in saved["series"]}
    if not results:
        return 1
    quiet_imports()
    print(f"settings: {json.dumps(saved['settings'])}")
    print(
        f"{os.cpu_count()} cores; series times (s): "
        + ", ".join(f"{t} {r['seconds']:.0f}" for t, r in results.items())
    )
    print(markdown(table(results)))
    for ticker, result in results.items():
        if result["naive_width_mismatch"] > 1e-6:  # percentage points of width
            print(f"warning: {ticker}'s stored naive intervals differ from forecasting.baselines'")
    missing = [ticker for ticker in tickers if ticker not in results]
    if missing:
        print(f"not measured (see the errors above; rerun to retry): {' '.join(missing)}")
    return 1 if missing else 0


def _score(job: tuple[str, str, int, Path, int | None]) -> dict[str, Any]:
    """Score one series in a pool worker; a failure comes back as its message, so that the
    other series go on."""
    try:
        return score_series(*job)
    except Exception as error:
        return {"ticker": job[0], "error": f"{type(error).__name__}: {error}"}
    finally:
        # A pool's worker exits without running atexit handlers: run them now, or Prefect's
        # temporary API server (a subprocess of this worker) outlives the benchmark.
        atexit._run_exitfuncs()


if __name__ == "__main__":
    sys.exit(main())
