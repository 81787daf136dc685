"""Walk-forward forecast quality of what the product serves and of every stored contender,
against naive and the benchmark's own GARCH(1,1)-t (issue 8, section 6; issue 24).

    python -m benchmarks.forecast_quality [--tickers NVDA ABNB ...] [--sessions 250] [--jobs 2]
        [--out forecast_quality.json] [--work-dir DIR]

For each series, the real ``backfill`` flow (every setting at its default unless the
environment says otherwise) runs the daily pipeline as of each of the ``--sessions`` sessions
before the series' last one, into the series' own SQLite file: so the forecast for each of the
last ``--sessions`` sessions is made from the closes up to the session before, by the model the
policy had that day, exactly as the product serves it. The benchmark then reads the stored rows:
the served forecast (``kind = 'forecast'``), every contender's own forecast (``kind =
'contender'``: ``lstm``, ``naive``, ``garch``, ``gjr``, ``garch_avg``) and the model versions.
The **bar** is :mod:`benchmarks.baselines`' GARCH(1,1)-t of the same days (constant mean,
Student-t, 1,000 returns refitted every 20 sessions from the first test day; the issue's
"GARCH(1,1)-t"), not the product's zero-drift, anchored ``garch`` contender. Actual closes and
the target day's bars come from the source itself (the store holds bars only up to the last
as-of day).

Per series and pooled (pooled tests use each test day's cross-series mean loss, day *k* of
every series, so that one market day on eleven correlated series is one observation):

- **served**: skill (RMSE / naive RMSE of prices; pooled on log returns, since dollar errors of
  different stocks do not pool); Diebold-Mariano of the served forecast against naive on
  squared errors of log returns (negative: served better); the share of days naive and the
  LSTM served; **LSTM staleness**: sessions between the LSTM's ``model_versions.train_end`` and
  the as-of date, max and mean.
- **every method** (served, the five contenders, the bar), on the same days: coverage at 80%
  and 95%; 95% coverage per tercile of the bar's variance forecast (ex ante, each series' own
  terciles; pooled: their mean over series); Christoffersen's conditional-coverage p at 80% and
  95% per series (pooled: how many series have p > 0.05); Winkler80/95 and the 95% width in
  percent of the base close; Diebold-Mariano of the daily Winkler95 against the bar; QLIKE of
  the variance forecast against the target day's Garman-Klass variance (a negative value taken
  as 0) plus its squared overnight gap, and its Diebold-Mariano against the bar; CRPS of the
  log return in percent where a distribution is known; the 90% model confidence set of the
  methods' daily Winkler95 (pooled rows).
- **target checks** (issue 24) of the served forecast, PASS or MISS with the measured numbers.

A stored row's variance of the log return: ``scale ** 2`` for ``naive``, ``garch``, ``gjr`` and
``garch_avg`` (their ``scale`` is the daily standard deviation); for ``lstm`` the stored ``scale``
is the Student-t scale of the network's head, whose degrees of freedom are
``forecasting.model.network.STUDENT_T_DF`` (5): ``scale ** 2 * 5 / 3``. Distributions for CRPS:
the LSTM's t(5) around its mean; the GARCH family's unit-variance t around the last close, with
``nu`` recovered from the ratio of the stored 95% and 80% half-widths
(:func:`benchmarks.contenders.degrees_of_freedom`) and checked to reproduce the 95% bound; the
bar's fitted t; naive's intervals are conformal and have no distribution. The served row scores
as the method that served it.

Series (chosen before any result was seen): the bundled NVDA and every fifth ticker of the
watchlist in alphabetical order, starting with the first (ABNB AVGO COST DOW IBM LLY MS PEP QCOM
UNH); ABNB (listed 2020-12) and DOW (2019-03) are the short histories.

Nothing is tuned here: the benchmark's test days are the last ``--sessions`` of each series and
every setting is the product's default. Each series runs in its own process (its own database,
Prefect home and settings); with ``--jobs N > 1``, N at a time, TensorFlow on one thread each.
Results go to ``--out`` after each series; a rerun skips the series already there (and resumes
an interrupted backfill from its SQLite file under ``--work-dir``), then prints the tables, so the
same command rebuilds them without training anything; results saved before issue 24 print with
"-" where they lack a column. Long: each series is ~250 sessions of real training (see
docs/benchmarks.md for the measured time). For a smoke test, shrink the model through the
environment, e.g. ``NVDA_FORECAST_TRAINING__LAYERS=1 NVDA_FORECAST_TRAINING__UNITS=4
NVDA_FORECAST_TRAINING__MAX_EPOCHS=2`` with ``--sessions 20``.
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
from scipy import stats

from benchmarks.backfill import isolate_process, quiet_imports, run_backfill
from benchmarks.baselines import DEFAULT_WATCHLIST, evaluate_series, series_list
from benchmarks.contenders import degrees_of_freedom
from forecasting.scoring import (
    christoffersen_test,
    coverage_by_tercile,
    crps_student_t,
    diebold_mariano,
    model_confidence_set,
    winkler_score,
)
from forecasting.volatility import qlike

CONTENDERS = ("lstm", "naive", "garch", "gjr", "garch_avg")  # kind = 'contender' methods
METHODS = ("served", *CONTENDERS, "bar")  # bar: benchmarks.baselines' GARCH(1,1)-t
GARCH_FAMILY = ("garch", "gjr", "garch_avg")  # stored as a unit-variance t around the last close
INTERVAL_METHODS = ("lstm", "naive", "bar")  # the first interval table's L, N and G
SCORES = ("inside_80", "inside_95", "width_95", "winkler_95")
DAY_SCORES = (*SCORES, "winkler_80", "variance", "qlike", "crps")
LEVELS = (0.80, 0.95)
GARCH = {"garch_window": 1000, "refit_every": 20, "dist": "t"}  # garch_forecasts' defaults
FORMAT = 2  # of a series' saved days; format 1 (before issue 24) named the bar "garch"
MCS_SIZE = 0.10
COLUMNS = (
    "base_close",
    "actual_close",
    "served_close",
    "lstm_close",
    "naive_served",
    "lstm_served",
    "staleness",
    "proxy",
    *(f"{method}_{score}" for method in METHODS for score in DAY_SCORES),
)


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


def stored_distribution(rows: pd.DataFrame, lstm_df: float) -> pd.DataFrame:
    """Each stored row's forecast of the log return: ``center``, ``variance``, and the
    Student-t's ``t_scale`` and ``df`` where the method has one (NaN for naive and missing rows).

    The row's ``method`` decides, so a served row is read as the contender that served it:
    ``lstm``: a t with ``lstm_df`` degrees of freedom whose scale is the stored ``scale``
    (variance ``scale**2 * df / (df - 2)``); the GARCH family: a unit-variance t around the last
    close, standard deviation ``scale``, ``nu`` recovered from the 95% / 80% half-width ratio;
    ``naive``: standard deviation ``scale``, no distribution (conformal intervals).
    """
    base = rows["base_close"].to_numpy(dtype="float64")
    center = np.log(rows["predicted_close"].to_numpy(dtype="float64") / base)
    scale = rows["scale"].to_numpy(dtype="float64")
    method = rows["method"].to_numpy(dtype=object)
    out = pd.DataFrame(
        {"center": center, "variance": scale**2, "t_scale": np.nan, "df": np.nan}, index=rows.index
    )
    lstm = method == "lstm"
    out.loc[lstm, "variance"] = scale[lstm] ** 2 * lstm_df / (lstm_df - 2.0)
    out.loc[lstm, "t_scale"], out.loc[lstm, "df"] = scale[lstm], lstm_df
    garch = np.isin(method, GARCH_FAMILY)
    if garch.any():
        half = {
            level: np.log(rows[f"upper_{round(100 * level)}"].to_numpy()[garch] / base[garch])
            - center[garch]
            for level in LEVELS
        }
        nu = degrees_of_freedom(half[0.95] / half[0.80])
        t_scale = scale[garch] * np.sqrt((nu - 2.0) / nu)
        gap = np.abs(t_scale * stats.t.ppf(0.975, nu) - half[0.95]) / half[0.95]
        if not gap.max() < 1e-6:
            raise RuntimeError(
                f"a stored GARCH-family row is not a t of its scale ({gap.max():.1e})"
            )
        out.loc[garch, "t_scale"], out.loc[garch, "df"] = t_scale, nu
    return out


def bar_distribution(bar: pd.DataFrame) -> pd.DataFrame:
    """The bar's forecast (:func:`forecasting.baselines.garch_forecasts`' frame) as
    :func:`stored_distribution` gives a stored row's."""
    variance, nu = bar["variance"], bar["df"]
    return pd.DataFrame(
        {
            "center": np.log(bar["predicted_close"] / bar["base_close"]),
            "variance": variance,
            "t_scale": np.sqrt(variance * (nu - 2.0) / nu),
            "df": nu,
        },
        index=bar.index,
    )


def method_days(
    rows: pd.DataFrame, distribution: pd.DataFrame, actual: np.ndarray, proxy: np.ndarray
) -> dict[str, np.ndarray]:
    """One method's :data:`DAY_SCORES` per day (NaN where it has no row): coverage flags, width
    and Winkler scores in percent of the base close, variance, QLIKE against ``proxy``, CRPS of
    the log return in percent (where a distribution is known)."""
    base = rows["base_close"].to_numpy(dtype="float64")
    out: dict[str, np.ndarray] = {}
    for level in LEVELS:
        percent = round(100 * level)
        lower = rows[f"lower_{percent}"].to_numpy(dtype="float64")
        upper = rows[f"upper_{percent}"].to_numpy(dtype="float64")
        inside = (actual >= lower) & (actual <= upper)
        out[f"inside_{percent}"] = np.where(np.isnan(lower + upper), np.nan, inside)
        out[f"winkler_{percent}"] = 100 * winkler_score(actual, lower, upper, level) / base
    out["width_95"] = 100 * (upper - lower) / base  # the 95% bounds, the loop's last
    variance = distribution["variance"].to_numpy(dtype="float64")
    out["variance"], out["qlike"] = variance, qlike(proxy, variance)
    known = distribution["df"].notna().to_numpy()
    crps = np.full(len(base), np.nan)
    if known.any():
        realized = np.log(actual / base)[known]
        known_rows = distribution[known]
        crps[known] = 100 * crps_student_t(
            realized, known_rows["center"], known_rows["t_scale"], known_rows["df"]
        )
    out["crps"] = crps
    return out


def score_series(
    ticker: str, source: str, sessions: int, work_dir: Path, threads: int | None
) -> dict[str, Any]:
    """Backfill one series into its own store and score its last ``sessions`` forecasts.

    Runs in a worker process: it points the process's settings and Prefect home at
    ``work_dir / ticker`` first.
    """
    isolate_process(work_dir / ticker, threads=threads)
    from flows.settings import get_settings
    from forecasting.baselines import garch_forecasts
    from forecasting.calendar import trading_days_between
    from forecasting.model.network import STUDENT_T_DF
    from forecasting.prices.sources import load_prices
    from forecasting.volatility import garman_klass, overnight

    started = time.perf_counter()
    bars = load_prices(source, ticker)
    close = bars["close"]
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
    # The bar's own frame (variance, fitted t), made as evaluate_series makes it (fits cached).
    bar = garch_forecasts(
        close,
        start=as_of[0].date(),
        window=min(GARCH["garch_window"], len(close) - sessions - 1),
        refit_every=GARCH["refit_every"],
        dist=GARCH["dist"],
    ).reindex(as_of)
    rows = {"served": _by_as_of(served).reindex(as_of)}
    for method in CONTENDERS:
        rows[method] = _by_as_of(contenders[contenders["method"] == method]).reindex(as_of)
    if (
        rows["served"]["predicted_close"].isna().any()
        or rows["lstm"]["predicted_close"].isna().any()
    ):
        raise RuntimeError(f"{ticker}: the store lacks forecasts of some benchmark days")
    actual = close.shift(-1).reindex(as_of)
    target = close.index[close.index.get_indexer(as_of) + 1]
    proxy = (garman_klass(bars).clip(lower=0.0) + overnight(bars)).reindex(target).to_numpy()
    stale = [
        trading_days_between(train_ends[int(version)], day.date())
        for version, day in zip(rows["lstm"]["model_version_id"], as_of, strict=True)
    ]
    days = pd.DataFrame(
        {
            "base_close": rows["served"]["base_close"],
            "actual_close": actual,
            "served_close": rows["served"]["predicted_close"],
            "lstm_close": rows["lstm"]["predicted_close"],
            "naive_served": rows["served"]["method"] == "naive",
            "lstm_served": rows["served"]["method"] == "lstm",
            "staleness": stale,
            "proxy": proxy,
        },
        index=as_of,
    )
    distributions = {name: stored_distribution(frame, STUDENT_T_DF) for name, frame in rows.items()}
    rows["bar"], distributions["bar"] = bar, bar_distribution(bar)
    for method in METHODS:
        scored = method_days(rows[method], distributions[method], actual.to_numpy(), proxy)
        for column in DAY_SCORES:
            days[f"{method}_{column}"] = scored[column]
    gap = float((days["bar_winkler_95"] - baselines["garch"]["winkler_95"]).abs().max())
    if not gap < 1e-9:
        raise RuntimeError(f"{ticker}: the bar differs from benchmarks.baselines' GARCH ({gap})")
    # The stored naive contender must be forecasting.baselines' own, day for day.
    mismatch = float((days["naive_width_95"] - baselines["naive_vol"]["width_95"]).abs().max())
    return {
        "format": FORMAT,
        "ticker": ticker,
        "source": source,
        "lstm_df": STUDENT_T_DF,
        "days": {
            "as_of": [day.date().isoformat() for day in as_of],
            **{name: _json_list(days[name]) for name in days.columns},
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


def _json_list(values: pd.Series) -> list[float | None]:
    """Floats for JSON, a missing value as null."""
    return [None if math.isnan(value) else value for value in values.astype(float)]


def _days(result: dict[str, Any]) -> pd.DataFrame:
    """A series' saved days, every column of :data:`COLUMNS` (NaN where the result lacks it)."""
    days = result["days"]
    frame = pd.DataFrame({k: v for k, v in days.items() if k != "as_of"}, index=days["as_of"])
    if result.get("format", 1) < 2:  # before issue 24, "garch" was the bar
        frame.columns = [f"bar{c[5:]}" if c.startswith("garch_") else c for c in frame.columns]
    return frame.reindex(columns=list(COLUMNS)).astype(float)


def _mean(values: pd.Series | np.ndarray) -> float:
    """The mean, NaN if any value is missing (every method on the same days, or none)."""
    return float(np.mean(np.asarray(values, dtype="float64")))


def _dm(loss_a: pd.Series, loss_b: pd.Series) -> tuple[float, float]:
    """Diebold-Mariano of two daily losses (statistic, p); NaN if either misses a day."""
    a, b = np.asarray(loss_a, dtype="float64"), np.asarray(loss_b, dtype="float64")
    if len(a) < 2 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.nan, math.nan
    test = diebold_mariano(a, b, power=1)
    return test.statistic, test.p_value


def _per_day(frames: list[pd.DataFrame], column: str) -> pd.Series:
    """Each test day's mean over the series (day ``k`` of every series' period)."""
    stacked = pd.concat([frame[column].reset_index(drop=True) for frame in frames])
    if stacked.isna().any():
        return pd.Series(math.nan, index=range(max(len(frame) for frame in frames)))
    return stacked.groupby(level=0).mean()


def confidence_set(losses: pd.DataFrame) -> dict[str, float]:
    """MCS p-value of each method with every day's loss (others: NaN). Methods with identical
    losses (the served forecast and the contender that served every day) enter as one and share
    its p-value: the bootstrap cannot standardize a difference that is 0 every day."""
    complete = losses.loc[:, losses.notna().all()]
    first: dict[str, str] = {}
    for name in complete.columns:
        twin = next((k for k in first.values() if complete[k].equals(complete[name])), name)
        first[name] = twin
    distinct = sorted(set(first.values()), key=list(complete.columns).index)
    p_values = {name: math.nan for name in losses.columns}
    if len(distinct) == 1:
        p_values.update(dict.fromkeys(first, 1.0))
    elif distinct:
        found = model_confidence_set(complete[distinct], size=MCS_SIZE).p_values
        p_values.update({name: found[twin] for name, twin in first.items()})
    return p_values


def _scores(days: pd.DataFrame, method: str, daily) -> dict[str, Any]:
    """Means of ``method``'s day scores over ``days``, ratios to the bar's, and Diebold-Mariano
    against the bar on ``daily(column)``: a series' days, or each day's cross-series mean."""
    row: dict[str, Any] = {s: _mean(days[f"{method}_{s}"]) for s in DAY_SCORES if s != "variance"}
    row["winkler_95_ratio"] = row["winkler_95"] / _mean(days["bar_winkler_95"])
    row["qlike_ratio"] = row["qlike"] / _mean(days["bar_qlike"])
    row["dm"], row["dm_p"] = _dm(daily(f"{method}_winkler_95"), daily("bar_winkler_95"))
    row["dm_qlike"], row["dm_qlike_p"] = _dm(daily(f"{method}_qlike"), daily("bar_qlike"))
    return row


def method_row(days: pd.DataFrame, method: str) -> dict[str, Any]:
    """One method's scores on one series' days, with its 95% coverage per tercile of the bar's
    (ex-ante) variance forecast and Christoffersen's conditional-coverage p at 80% and 95%."""
    row = _scores(days, method, lambda column: days[column])
    inside = {level: days[f"{method}_inside_{round(100 * level)}"] for level in LEVELS}
    proxy = days["bar_variance"]
    if inside[0.95].notna().all() and proxy.notna().all() and len(days) >= 3:
        ones = np.ones(len(days))  # a hit is a flag of 1, inside [1, 1]
        row["cov95_terciles"] = coverage_by_tercile(inside[0.95], ones, ones, proxy).tolist()
    else:
        row["cov95_terciles"] = [math.nan] * 3
    for level, flags in inside.items():
        complete = flags.notna().all() and len(flags) >= 2
        p = christoffersen_test(flags.to_numpy(), level).p_cc if complete else math.nan
        row[f"cc_p_{round(100 * level)}"] = p
    return row


def pooled_method_row(
    frames: list[pd.DataFrame], each: list[dict[str, Any]], method: str
) -> dict[str, Any]:
    """One method's scores over every series-day (tests on each day's cross-series mean), and
    counts of the series whose rows ``each`` pass a test."""
    row = _scores(
        pd.concat(frames, ignore_index=True), method, lambda column: _per_day(frames, column)
    )
    row["cov95_terciles"] = np.mean([s["cov95_terciles"] for s in each], axis=0).tolist()
    for percent in (80, 95):
        key = f"cc_p_{percent}"
        row[f"cc_pass_{percent}"] = _count(each, (key,), lambda s, k=key: s[k] > 0.05)
    ratio = ("winkler_95_ratio",)
    row["better_than_bar"] = _count(each, ratio, lambda s: s["winkler_95_ratio"] < 1)
    dm = ("dm", "dm_p")
    row["sig_better"] = _count(each, dm, lambda s: s["dm_p"] < 0.05 and s["dm"] < 0)
    row["sig_worse"] = _count(each, dm, lambda s: s["dm_p"] < 0.05 and s["dm"] > 0)
    row["series_in_mcs"] = _count(each, ("mcs_p",), lambda s: s["mcs_p"] >= MCS_SIZE)
    return row


def _count(each: list[dict[str, Any]], keys: Sequence[str], test) -> float:
    """How many series' rows pass ``test``; NaN unless every one has the ``keys`` it reads."""
    if any(math.isnan(s[key]) for s in each for key in keys):
        return math.nan
    return float(sum(bool(test(s)) for s in each))


def served_values(frames: list[pd.DataFrame]) -> dict[str, float]:
    """The served forecast against naive: per series if ``frames`` has one frame, pooled over
    series-days if more."""
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
    return {
        "n": len(days),
        "skill": skill,
        "dm": test.statistic,
        "p": test.p_value,
        "naive_share": _mean(days["naive_served"]),
        "lstm_share": _mean(days["lstm_served"]),
        "stale_max": float(days["staleness"].max()),
        "stale_mean": float(days["staleness"].mean()),
    }


def row(frames: list[pd.DataFrame], each: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One table row: a series' if ``frames`` has one frame, else pooled over ``frames``, whose
    series' rows are ``each``. ``methods`` holds every method's scores."""
    values: dict[str, Any] = served_values(frames)
    if each is None:
        methods = {method: method_row(frames[0], method) for method in METHODS}
    else:
        methods = {
            method: pooled_method_row(frames, [s["methods"][method] for s in each], method)
            for method in METHODS
        }
    losses = pd.DataFrame({method: _per_day(frames, f"{method}_winkler_95") for method in METHODS})
    for method, p_value in confidence_set(losses).items():
        methods[method]["mcs_p"] = p_value
    values["methods"] = methods
    for method in INTERVAL_METHODS:  # the first interval table's columns
        for column in SCORES:
            values[f"{method}_{column}"] = methods[method][column]
    values["winkler_ratio"] = values["lstm_winkler_95"] / values["naive_winkler_95"]
    return values


def table(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows per series (in the order given), then pooled over the watchlist and over all."""
    frames = {ticker: _days(result) for ticker, result in results.items()}
    rows = {ticker: row([frame]) for ticker, frame in frames.items()}
    watchlist = [ticker for ticker in frames if ticker != "NVDA"]
    if len(watchlist) > 1 and len(watchlist) < len(frames):
        rows[f"pooled watchlist ({len(watchlist)})"] = row(
            [frames[t] for t in watchlist], [rows[t] for t in watchlist]
        )
    if len(frames) > 1:
        rows[f"pooled all ({len(frames)})"] = row(list(frames.values()), [rows[t] for t in frames])
    return rows


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:{spec}}"


def _terciles(values: list[float]) -> str:
    return " / ".join(_number(value, ".3f") for value in values)


def served_markdown(rows: dict[str, dict[str, Any]]) -> str:
    """Two GitHub tables: the served forecast, then the intervals of L, N and G (the bar)."""
    served = [
        "| series | n | served skill | DM | p | naive served | LSTM served | LSTM stale max "
        "| mean |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    intervals = [
        "| series | cov80 L | N | G | cov95 L | N | G | width95 % L | N | G "
        "| W95 % L | N | G | W95 L/N |",
        "|---|" + "---:|" * 13,
    ]
    for name, r in rows.items():
        served.append(
            f"| {name} | {r['n']} | {r['skill']:.3f} | {r['dm']:.2f} | {r['p']:.3f} "
            f"| {_number(r['naive_share'], '.2f')} | {_number(r['lstm_share'], '.2f')} "
            f"| {r['stale_max']:.0f} | {r['stale_mean']:.1f} |"
        )
        cells = [
            _number(r[f"{method}_{column}"], spec)
            for column, spec in zip(SCORES, (".3f", ".3f", ".2f", ".3f"), strict=True)
            for method in INTERVAL_METHODS
        ]
        intervals.append(
            f"| {name} | " + " | ".join(cells) + f" | {_number(r['winkler_ratio'], '.3f')} |"
        )
    return "\n".join(served) + "\n\n" + "\n".join(intervals)


COVERAGE = (("cov80", "inside_80", ".3f"), ("cov95", "inside_95", ".3f"))
WINKLER = (
    ("W80 %", "winkler_80", ".3f"),
    ("W95 %", "winkler_95", ".3f"),
    ("W95 / G", "winkler_95_ratio", ".4f"),
)
SERIES_COLUMNS = (  # (header, key of a method's row, format)
    *COVERAGE,
    ("cov95 by G-variance tercile", "cov95_terciles", "terciles"),
    ("CC p 80", "cc_p_80", ".3f"),
    ("CC p 95", "cc_p_95", ".3f"),
    *WINKLER,
    ("DM W95 vs G", "dm", ".2f"),
    ("p", "dm_p", ".3f"),
    ("QLIKE", "qlike", ".4f"),
    ("QLIKE / G", "qlike_ratio", ".4f"),
    ("CRPS %", "crps", ".4f"),
    ("MCS p", "mcs_p", ".3f"),
)
POOLED_COLUMNS = (
    *COVERAGE,
    ("cov95 by G-variance tercile (mean of series)", "cov95_terciles", "terciles"),
    ("CC p > 0.05 at 80 (series)", "cc_pass_80", ".0f"),
    ("at 95", "cc_pass_95", ".0f"),
    *WINKLER,
    ("better than G (series)", "better_than_bar", ".0f"),
    ("DM W95 vs G", "dm", ".2f"),
    ("p", "dm_p", ".3f"),
    ("sig. better (series)", "sig_better", ".0f"),
    ("sig. worse", "sig_worse", ".0f"),
    ("QLIKE", "qlike", ".4f"),
    ("QLIKE / G", "qlike_ratio", ".4f"),
    ("DM QLIKE p", "dm_qlike_p", ".3f"),
    ("CRPS %", "crps", ".4f"),
    ("MCS p", "mcs_p", ".3f"),
    ("in series' MCS", "series_in_mcs", ".0f"),
)
LEGEND = (
    "G, the bar: benchmarks.baselines' constant-mean GARCH(1,1)-t refitted every 20 sessions from "
    "the first test day; garch, gjr, garch_avg: the product's stored zero-drift contenders. Pooled "
    "tests on each day's cross-series mean; MCS p: the method's p-value in the 90% model "
    "confidence set of the daily Winkler95 (methods with identical losses share one)."
)


def methods_table(first: str, rows: dict[str, dict[str, Any]], columns: tuple) -> str:
    """Every method of every row in ``rows``: one line each, ``columns`` of its scores."""
    lines = [
        "| " + " | ".join((first, "method", *(header for header, _, _ in columns))) + " |",
        "|---|---|" + "---:|" * len(columns),
    ]
    for name, r in rows.items():
        for method, scores in r["methods"].items():
            cells = [
                _terciles(scores[key]) if spec == "terciles" else _number(scores[key], spec)
                for _, key, spec in columns
            ]
            lines.append(f"| {name} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def methods_markdown(rows: dict[str, dict[str, Any]], n_series: int) -> str:
    """Every method on the same days: per series, then pooled (if more than one series)."""
    names = list(rows)
    tables = [methods_table("series", {n: rows[n] for n in names[:n_series]}, SERIES_COLUMNS)]
    if len(names) > n_series:
        tables.append(methods_table("pool", {n: rows[n] for n in names[n_series:]}, POOLED_COLUMNS))
    return "\n\n".join([*tables, LEGEND])


Check = tuple[str, str, bool | None]


def _check(target: str, measured: str, values: Sequence[float], met) -> Check:
    """``(target, measured, met())``; ``met`` is ``None`` where a value it reads is missing."""
    known = all(value is not None and not math.isnan(value) for value in values)
    return target, measured, (bool(met()) if known else None)


def target_checks(rows: dict[str, dict[str, Any]], n_series: int) -> list[Check]:
    """Issue 24's targets of the served forecast against the bar, on the pool of all series
    (or the one series): ``(target, measured, met)``, ``met`` ``None`` where the results lack
    what it needs. "9 of 11 series" scales to ``ceil(9 n / 11)`` of ``n``."""
    pool = rows[list(rows)[-1]]
    served, bar = pool["methods"]["served"], pool["methods"]["bar"]
    each = {ticker: rows[ticker] for ticker in list(rows)[:n_series]}
    need = math.ceil(9 * n_series / 11)
    ratio, qlike_ratio, terciles = (
        served["winkler_95_ratio"],
        served["qlike_ratio"],
        served["cov95_terciles"],
    )
    better = [r["methods"]["served"]["winkler_95_ratio"] for r in each.values()]
    worse = [ticker for ticker, r in each.items() if r["p"] < 0.05 and r["dm"] > 0]
    checks = [
        _check(
            "served Winkler95 <= 0.95x GARCH(1,1)-t's, pooled",
            f"{_number(ratio, '.4f')}x ({_number(served['winkler_95'], '.3f')} vs "
            f"{_number(bar['winkler_95'], '.3f')} % of the close)",
            [ratio],
            lambda: ratio <= 0.95,
        ),
        _check(
            f"served Winkler95 below GARCH's on >= {need} of {n_series} series",
            f"{sum(value < 1 for value in better)} of {n_series}",
            better,
            lambda: sum(value < 1 for value in better) >= need,
        ),
        _check(
            "pooled DM of daily Winkler95, served vs GARCH: served better at p < 0.05",
            f"DM {_number(served['dm'], '.2f')}, p {_number(served['dm_p'], '.3f')}",
            [served["dm"], served["dm_p"]],
            lambda: served["dm"] < 0 and served["dm_p"] < 0.05,
        ),
        _check(
            "served QLIKE <= 0.95x GARCH's, pooled",
            f"{_number(qlike_ratio, '.4f')}x ({_number(served['qlike'], '.4f')} vs "
            f"{_number(bar['qlike'], '.4f')})",
            [qlike_ratio],
            lambda: qlike_ratio <= 0.95,
        ),
    ]
    for percent in (80, 95):
        coverage = served[f"inside_{percent}"]
        checks.append(
            _check(
                f"pooled {percent}% coverage within 1.5 pp of {percent}%",
                _number(coverage, ".3f"),
                [coverage],
                lambda c=coverage, p=percent: abs(c - p / 100) <= 0.015 + 1e-12,
            )
        )
    checks.append(
        _check(
            "95% coverage in [0.92, 0.98] in each GARCH-variance tercile (mean of the series')",
            f"{_terciles(terciles)} (low / mid / high)",
            terciles,
            lambda: all(0.92 <= value <= 0.98 for value in terciles),
        )
    )
    for percent in (95, 80):
        p_values = [r["methods"]["served"][f"cc_p_{percent}"] for r in each.values()]
        passed = sum(value > 0.05 for value in p_values)
        checks.append(
            _check(
                f"Christoffersen CC p > 0.05 at {percent}% on >= {need} of {n_series} series",
                f"{passed} of {n_series} (lowest p {_number(min(p_values), '.3f')})",
                p_values,
                lambda passed=passed: passed >= need,
            )
        )
    checks += [
        _check(
            "pooled served skill <= 1.000",
            f"{pool['skill']:.3f}",
            [pool["skill"]],
            lambda: round(pool["skill"], 3) <= 1.0,
        ),
        _check(
            "no series significantly worse than naive (DM, 5%)",
            f"{len(worse)} of {n_series}" + (f": {' '.join(worse)}" if worse else ""),
            [r["p"] for r in each.values()],
            lambda: not worse,
        ),
    ]
    return checks


def checks_text(checks: list[Check]) -> str:
    """The target checks as PASS / MISS lines ("n/a": the results lack the numbers)."""
    verdict = {True: "PASS", False: "MISS", None: "n/a "}
    lines = [f"- {verdict[met]} {target}: {measured}" for target, measured, met in checks]
    passed = sum(met is True for _, _, met in checks)
    return (
        f"Targets (issue 24), served forecast; GARCH = the bar; {passed} of {len(checks)} met:\n"
        + "\n".join(lines)
    )


def load(out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The results saved so far (a new file's skeleton with ``settings`` if there are none)."""
    if not out.exists():
        return {"settings": settings, "series": {}}
    return json.loads(out.read_text())


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
    settings = experiment_settings(arguments.sessions)
    saved = load(arguments.out, settings)
    todo = [ticker for ticker in tickers if ticker not in saved["series"]]
    if todo and saved["settings"] != settings:  # printing saved results mixes nothing
        raise SystemExit(
            f"{arguments.out} holds results of other settings ({saved['settings']}); "
            "use another --out or delete it"
        )
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
    if saved["settings"] != settings:
        print("note: saved with other settings than the current ones; printed as saved")
    print(
        f"{os.cpu_count()} cores; series times (s): "
        + ", ".join(f"{t} {r['seconds']:.0f}" for t, r in results.items())
    )
    rows = table(results)
    print(served_markdown(rows))
    print()
    print(methods_markdown(rows, len(results)))
    print()
    print(checks_text(target_checks(rows, len(results))))
    for ticker, result in results.items():
        if result["naive_width_mismatch"] > 1e-6:  # percentage points of width
            print(f"warning: {ticker}'s stored naive intervals differ from forecasting.baselines'")
    old = [ticker for ticker, result in results.items() if result.get("format", 1) < FORMAT]
    if old:
        print(
            f"saved before issue 24 (their served intervals and GARCH-family contenders "
            f"shown as -): {' '.join(old)}"
        )
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
