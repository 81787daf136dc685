"""Interval contenders and their combinations, walk-forward, on a validation period (issue 24).

    python -m benchmarks.contenders [--holdout 250] [--days 500] [--jobs 1] [--tickers ...]
        [--out benchmarks/results/contenders_validation.json]

For the bundled NVDA and the 50 watchlist tickers, every method forecasts, walk-forward, the
next close of each of ``--days`` sessions from the closes (and bars) up to the session before.
With the defaults, those are the 500 sessions that end right before each series' last 250: the
**validation** period. ``benchmarks/forecast_quality.py`` tests on the forecasts made as of
``close.index[-251:-1]`` (targets: the last 250 sessions); ``--holdout 250`` cuts those 250
sessions off first and then takes the as-of days ``close.index[-501:-1]`` of what is left, as
``benchmarks/baselines.py --holdout 250 --days 500`` does. The **test** period is ``--holdout 0
--days 250``: it is run once, by the team, after a rule has been chosen here.

Methods (log-return forecasts; an interval for the close is ``C_t * exp(bound)``):

- ``naive_vol``: :func:`forecasting.baselines.naive_volatility_forecasts` (its 20-day variance).
- ``garch``, ``gjr``: :func:`forecasting.baselines.garch_forecasts` (Student-t, refit every 20
  sessions on the last 1,000 returns, or on all there are). The scored days' forecasts are made
  exactly as ``benchmarks/baselines.py`` makes them; the 250 sessions before them (the rules'
  warm-up) by a second call on the closes before the first scored day. The fitted degrees of
  freedom ``nu`` are recovered from the ratio of the 95% and 80% half-widths (which is
  ``t_nu(0.975) / t_nu(0.90)``), and checked to reproduce both bounds.
- ``avg_gg``: the mean of GARCH's and GJR's variances and means; intervals from a unit-variance
  Student-t with ``nu`` the mean of their two ``nu``. ``avg_all``: the mean of all three
  variances and means (naive's mean is 0), the same t.
- ``select60``: each day, whichever of ``garch, gjr, naive_vol`` had the lowest mean Winkler95
  over its last 60 realized forecasts (as of day t: the forecasts made as of t-60..t-1, whose
  targets have closed by t); ties go to the earlier in that order.
- ``*_aci``: ``garch, gjr, avg_gg, avg_all`` with their half-width recalibrated by
  :func:`forecasting.conformal.adaptive_quantiles` (the product's serving defaults: gamma 0.005,
  250 scores) on the scores ``|r - mu| / sigma``; the 250 warm-up days' scores start the window.

Scores, all on the same days: coverage 80/95 and 95 per tercile of the day's GARCH(1,1) variance
forecast (ex ante: known when forecasting; terciles of each series' own days) and of the
Garman-Klass + overnight proxy of the target day (ex post; JSON only); Winkler80/95 in percent
of the base close; CRPS of the log return in percent (t forecasts only); QLIKE of the variance
forecast against Garman-Klass + the squared overnight gap of the target day (a negative
Garman-Klass value, a bar whose open or close lies outside its range, taken as 0); Christoffersen's
conditional-coverage test per series; Diebold-Mariano of the daily Winkler95 against GARCH per
series and pooled (the pooled tests use each day's cross-series mean, so that one market day on
51 correlated series does not count as 51 days); the 90% model confidence set of the daily
cross-series mean Winkler95 (and per series, counted).

Every series runs in its own process (``--jobs N``: N at a time). GARCH and GJR refits dominate:
about 3 s a series, 140 s for all 51 with ``--jobs 1`` on a 2-core machine. ``--out`` gets the
per-series and pooled rows and each day's cross-series mean Winkler95 and QLIKE (enough to redo
the pooled tests), and a ``.md`` beside it with the tables and every series' Winkler95 ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from benchmarks.baselines import DEFAULT_WATCHLIST, series_list
from forecasting.baselines import garch_forecasts, naive_volatility_forecasts
from forecasting.conformal import adaptive_quantiles
from forecasting.scoring import (
    christoffersen_test,
    coverage_by_tercile,
    crps_student_t,
    diebold_mariano,
    model_confidence_set,
    winkler_score,
)
from forecasting.volatility import garman_klass, overnight, qlike

BASE = ("garch", "gjr", "naive_vol")  # select60's choices, in tie-breaking order
COMBINED = ("avg_gg", "avg_all")
ACI = ("garch_aci", "gjr_aci", "avg_gg_aci", "avg_all_aci")
METHODS = ("naive_vol", "garch", "gjr", *COMBINED, "select60", *ACI)
LEVELS = (0.80, 0.95)
TAILS = {0.80: 0.90, 0.95: 0.975}  # the upper quantile of each central interval
WARMUP = 250  # sessions forecast before the scored ones: select60's 60 days, ACI's 250 scores
SELECTION_WINDOW = 60
ACI_GAMMA, ACI_WINDOW = 0.005, 250  # forecasting.config.ServingConfig's defaults
GARCH = {"garch_window": 1000, "refit_every": 20, "dist": "t"}


def _t_ratio(nu: float, target: float = 0.0) -> float:
    """``t_nu(0.975) / t_nu(0.90) - target``."""
    return float(stats.t.ppf(TAILS[0.95], nu) / stats.t.ppf(TAILS[0.80], nu)) - target


def degrees_of_freedom(ratio: np.ndarray) -> np.ndarray:
    """``nu`` with ``t_nu(0.975) / t_nu(0.90) = ratio`` (decreasing in ``nu``), per day."""
    solved = {}
    for value in np.unique(np.round(ratio, 9)):
        if value >= _t_ratio(2.0001):
            solved[value] = 2.0001
        elif value <= _t_ratio(1e6):
            solved[value] = 1e6
        else:
            solved[value] = optimize.brentq(_t_ratio, 2.0001, 1e6, args=(value,), xtol=1e-10)
    return np.array([solved[value] for value in np.round(ratio, 9)])


def _log_bounds(frame: pd.DataFrame) -> pd.DataFrame:
    """A forecasting.baselines frame as log returns: center, bounds per level, variance."""
    base = frame["base_close"]
    out = pd.DataFrame({"center": np.log(frame["predicted_close"] / base)}, index=frame.index)
    for level in LEVELS:
        percent = round(100 * level)
        for side in ("lower", "upper"):
            out[f"{side}_{percent}"] = np.log(frame[f"{side}_{percent}"] / base)
    out["variance"] = frame["variance"]
    out["scale"], out["df"] = np.nan, np.nan
    return out


def _t_method(center: np.ndarray, variance: np.ndarray, nu: np.ndarray, index) -> pd.DataFrame:
    """Intervals of ``center + sqrt(variance) * z`` with ``z`` a unit-variance t with ``nu``."""
    unit = np.sqrt((nu - 2.0) / nu)  # the t's scale per unit of standard deviation
    out = pd.DataFrame({"center": center}, index=index)
    for level, tail in TAILS.items():
        half = np.sqrt(variance) * stats.t.ppf(tail, nu) * unit
        out[f"lower_{round(100 * level)}"] = center - half
        out[f"upper_{round(100 * level)}"] = center + half
    out["variance"], out["scale"], out["df"] = variance, np.sqrt(variance) * unit, nu
    return out


def garch_method(close: pd.Series, first: int, kind: str) -> pd.DataFrame:
    """GARCH or GJR forecasts as of positions ``first - WARMUP .. len - 2``, with their ``nu``."""
    warm = first - WARMUP
    scored = garch_forecasts(
        close, start=close.index[first].date(), window=min(GARCH["garch_window"], first), kind=kind
    )
    before = garch_forecasts(
        close.iloc[:first],
        start=close.index[warm].date(),
        window=min(GARCH["garch_window"], warm),
        kind=kind,
    )
    frame = _log_bounds(pd.concat([before, scored]).iloc[:-1])  # the last close has no target
    half = {level: frame[f"upper_{round(100 * level)}"] - frame["center"] for level in LEVELS}
    nu = degrees_of_freedom((half[0.95] / half[0.80]).to_numpy())
    rebuilt = _t_method(frame["center"].to_numpy(), frame["variance"].to_numpy(), nu, frame.index)
    gap = (rebuilt[["lower_80", "upper_95"]] - frame[["lower_80", "upper_95"]]).abs().max().max()
    if not gap < 1e-8:
        raise RuntimeError(f"{kind}: the recovered t does not reproduce the bounds ({gap:.2e})")
    # The bounds as garch_forecasts made them (the rebuilt ones agree to 1e-8); the t for CRPS.
    frame["scale"], frame["df"] = rebuilt["scale"], nu
    return frame


def select(methods: dict[str, pd.DataFrame], winkler: dict[str, np.ndarray]) -> pd.DataFrame:
    """``select60``: each day the method of :data:`BASE` with the lowest trailing Winkler95."""
    table = np.column_stack([winkler[name] for name in BASE])
    trailing = pd.DataFrame(table).rolling(SELECTION_WINDOW).mean().shift(1).to_numpy()
    choice = np.nanargmin(np.where(np.isnan(trailing), np.inf, trailing), axis=1)
    stacked = np.stack([methods[name].to_numpy() for name in BASE])
    rows = stacked[choice, np.arange(len(choice))]
    out = pd.DataFrame(rows, index=methods[BASE[0]].index, columns=methods[BASE[0]].columns)
    out["choice"] = choice
    return out


def with_aci(method: pd.DataFrame, realized: np.ndarray) -> pd.DataFrame:
    """The method's intervals rescaled by adaptive conformal inference from the scored days on."""
    sigma = np.sqrt(method["variance"].to_numpy())
    scores = np.abs(realized - method["center"].to_numpy()) / sigma
    out = method.copy()
    out[["scale", "df"]] = np.nan
    for level in LEVELS:
        walk = adaptive_quantiles(
            scores[WARMUP:], level=level, gamma=ACI_GAMMA, window=ACI_WINDOW, warmup=scores[:WARMUP]
        )
        half = np.r_[np.full(WARMUP, np.nan), walk.quantile] * sigma
        out[f"lower_{round(100 * level)}"] = method["center"] - half
        out[f"upper_{round(100 * level)}"] = method["center"] + half
    return out


def forecasts(bars: pd.DataFrame, days: int) -> tuple[dict[str, pd.DataFrame], np.ndarray]:
    """Every method's forecasts as of the ``WARMUP + days`` sessions before the last bar, and
    the realized log return of each (the next session's)."""
    close = bars["close"]
    first = len(close) - days - 1
    if first - WARMUP < 270:  # naive + volatility's first forecast is as of close 270
        raise ValueError(f"too short a history: {len(close)} closes")
    garch = garch_method(close, first, "garch")
    index = garch.index
    realized = np.log(close.shift(-1) / close).reindex(index).to_numpy()
    methods = {
        "naive_vol": _log_bounds(naive_volatility_forecasts(close).reindex(index)),
        "garch": garch,
        "gjr": garch_method(close, first, "gjr"),
    }
    if methods["naive_vol"]["center"].isna().any():
        raise ValueError("naive + volatility has no forecast on some days")
    gg = ("garch", "gjr")
    nu = np.mean([methods[name]["df"].to_numpy() for name in gg], axis=0)
    for name, members in (("avg_gg", gg), ("avg_all", BASE)):
        center = np.mean([methods[m]["center"].to_numpy() for m in members], axis=0)
        variance = np.mean([methods[m]["variance"].to_numpy() for m in members], axis=0)
        methods[name] = _t_method(center, variance, nu, index)
    winkler = {name: daily_winkler(methods[name], realized, 0.95) for name in BASE}
    methods["select60"] = select(methods, winkler)
    for name in ACI:
        methods[name] = with_aci(methods[name.removesuffix("_aci")], realized)
    return {name: frame.iloc[WARMUP:] for name, frame in methods.items()}, realized[WARMUP:]


def daily_winkler(method: pd.DataFrame, realized: np.ndarray, level: float) -> np.ndarray:
    """Winkler score per day in percent of the base close (``C_t = 1``)."""
    percent = round(100 * level)
    lower, upper = np.exp(method[f"lower_{percent}"]), np.exp(method[f"upper_{percent}"])
    return 100.0 * winkler_score(np.exp(realized), lower, upper, level)


def score_series(ticker: str, source: str, holdout: int, days: int) -> dict[str, Any]:
    """One series' per-day scores of every method, and its per-series statistics."""
    from forecasting.prices.sources import load_prices

    started = time.perf_counter()
    bars = load_prices(source, ticker)
    bars = bars.iloc[: len(bars) - holdout]
    methods, realized = forecasts(bars, days)
    as_of = methods["garch"].index
    target = bars.index[bars.index.get_indexer(as_of) + 1]
    proxy = (garman_klass(bars).clip(lower=0.0) + overnight(bars)).reindex(target).to_numpy()
    garch_variance = methods["garch"]["variance"].to_numpy()
    per_day: dict[str, dict[str, list[float]]] = {}
    stats_: dict[str, dict[str, Any]] = {}
    for name, method in methods.items():
        inside = {
            level: (realized >= method[f"lower_{round(100 * level)}"].to_numpy())
            & (realized <= method[f"upper_{round(100 * level)}"].to_numpy())
            for level in LEVELS
        }
        has_t = method["df"].notna().all()
        crps = (
            100 * crps_student_t(realized, method["center"], method["scale"], method["df"])
            if has_t
            else np.full(len(realized), np.nan)
        )
        keep_qlike = not name.endswith("_aci")  # ACI changes the intervals, not the variance
        loss = qlike(proxy, method["variance"]) if keep_qlike else np.full(len(realized), np.nan)
        per_day[name] = {
            "inside_80": inside[0.80].astype(float).tolist(),
            "inside_95": inside[0.95].astype(float).tolist(),
            "winkler_80": daily_winkler(method, realized, 0.80).tolist(),
            "winkler_95": daily_winkler(method, realized, 0.95).tolist(),
            "crps": crps.tolist(),
            "qlike": loss.tolist(),
        }
        exp_realized = np.exp(realized)
        bounds95 = np.exp(method["lower_95"]), np.exp(method["upper_95"])
        stats_[name] = {
            "cov95_garch_tercile": coverage_by_tercile(exp_realized, *bounds95, garch_variance),
            "cov95_proxy_tercile": coverage_by_tercile(exp_realized, *bounds95, proxy),
            "cc_p_80": christoffersen_test(inside[0.80], 0.80).p_cc,
            "cc_p_95": christoffersen_test(inside[0.95], 0.95).p_cc,
        }
        stats_[name] = {k: np.asarray(v).tolist() for k, v in stats_[name].items()}
    choice = methods["select60"]["choice"].to_numpy().astype(int)
    stats_["select60"]["share"] = {b: float(np.mean(choice == i)) for i, b in enumerate(BASE)}
    return {
        "ticker": ticker,
        "as_of": [as_of[0].date().isoformat(), as_of[-1].date().isoformat()],
        "days": per_day,
        "stats": stats_,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _score(job: tuple[str, str, int, int]) -> dict[str, Any]:
    try:
        return score_series(*job)
    except Exception as error:  # one series' failure must not stop the others
        return {"ticker": job[0], "error": f"{type(error).__name__}: {error}"}


def _frame(result: dict[str, Any], name: str) -> pd.DataFrame:
    return pd.DataFrame(result["days"][name])


def series_row(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per method: means over the series' days, ratios and Diebold-Mariano against GARCH."""
    garch = _frame(result, "garch")
    losses = pd.DataFrame({name: _frame(result, name)["winkler_95"] for name in METHODS})
    included = set(model_confidence_set(losses, size=0.10).included)
    rows = {}
    for name in METHODS:
        days, extra = _frame(result, name), result["stats"][name]
        test = diebold_mariano(days["winkler_95"], garch["winkler_95"], power=1)
        rows[name] = {
            **{column: float(days[column].mean()) for column in days.columns},
            "winkler_95_ratio": float(days["winkler_95"].mean() / garch["winkler_95"].mean()),
            "qlike_ratio": float(days["qlike"].mean() / garch["qlike"].mean()),
            "dm": test.statistic,
            "dm_p": test.p_value,
            "in_mcs": name in included,
            **extra,
        }
    return rows


def pooled_row(results: list[dict[str, Any]], rows: list[dict[str, dict[str, Any]]]) -> dict:
    """Per method: means over every series-day; Diebold-Mariano and the model confidence set of
    each day's cross-series mean (day k of every series' period)."""
    per_day = {
        column: pd.DataFrame(
            {name: np.mean([r["days"][name][column] for r in results], axis=0) for name in METHODS}
        )
        for column in ("winkler_95", "qlike")
    }
    mcs = model_confidence_set(per_day["winkler_95"], size=0.10)
    means = {
        name: pd.concat([_frame(r, name) for r in results], ignore_index=True).mean()
        for name in METHODS
    }
    pooled: dict[str, Any] = {}
    for name in METHODS:
        row = {column: float(value) for column, value in means[name].items()}
        garch = means["garch"]
        row["winkler_95_ratio"] = row["winkler_95"] / garch["winkler_95"]
        row["qlike_ratio"] = row["qlike"] / garch["qlike"]
        each = [series[name] for series in rows]
        row["cov95_garch_tercile"] = np.mean([s["cov95_garch_tercile"] for s in each], 0).tolist()
        row["cov95_proxy_tercile"] = np.mean([s["cov95_proxy_tercile"] for s in each], 0).tolist()
        row["series_better_w95"] = sum(s["winkler_95_ratio"] < 1 for s in each)
        row["series_better_qlike"] = sum(s["qlike_ratio"] < 1 for s in each)
        row["series_dm_better"] = sum(s["dm_p"] < 0.05 and s["dm"] < 0 for s in each)
        row["series_dm_worse"] = sum(s["dm_p"] < 0.05 and s["dm"] > 0 for s in each)
        row["series_cc_reject_80"] = sum(s["cc_p_80"] < 0.05 for s in each)
        row["series_cc_reject_95"] = sum(s["cc_p_95"] < 0.05 for s in each)
        row["series_in_mcs"] = sum(s["in_mcs"] for s in each)
        for column, key in (("winkler_95", "dm"), ("qlike", "dm_qlike")):
            if per_day[column][name].isna().any():
                row[key], row[f"{key}_p"] = math.nan, math.nan
                continue
            test = diebold_mariano(per_day[column][name], per_day[column]["garch"], power=1)
            row[key], row[f"{key}_p"] = test.statistic, test.p_value
        row["mcs_p"] = mcs.p_values[name]
        pooled[name] = row
    return {
        "methods": pooled,
        "mcs_included": list(mcs.included),
        "per_day_mean": {column: frame.to_dict("list") for column, frame in per_day.items()},
    }


def markdown(pooled: dict[str, Any], n_series: int) -> str:
    """The pooled tables: calibration, then the scores against GARCH(1,1)-t."""
    methods = pooled["methods"]
    calibration = [
        "| method | cov80 | cov95 | cov95 by GARCH-variance tercile (low / mid / high) "
        "| cov95 by realized-proxy tercile "
        f"| CC 80 rejects (of {n_series}) | CC 95 rejects |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    scores = [
        "| method | W80 % | W95 % | W95 / G | better than G (series) | DM | p "
        "| sig. better / worse (series) | CRPS % | QLIKE | QLIKE / G | DM QLIKE p | MCS p "
        "| in series' MCS |",
        "|---|" + "---:|" * 13,
    ]

    def number(value: float, spec: str) -> str:
        return "-" if value is None or math.isnan(value) else f"{value:{spec}}"

    for name, r in methods.items():
        terciles = " / ".join(f"{value:.3f}" for value in r["cov95_garch_tercile"])
        realized = " / ".join(f"{value:.3f}" for value in r["cov95_proxy_tercile"])
        calibration.append(
            f"| {name} | {r['inside_80']:.3f} | {r['inside_95']:.3f} | {terciles} | {realized} "
            f"| {r['series_cc_reject_80']} | {r['series_cc_reject_95']} |"
        )
        scores.append(
            f"| {name} | {r['winkler_80']:.3f} | {r['winkler_95']:.3f} "
            f"| {r['winkler_95_ratio']:.4f} | {r['series_better_w95']} "
            f"| {number(r['dm'], '.2f')} | {number(r['dm_p'], '.3f')} "
            f"| {r['series_dm_better']} / {r['series_dm_worse']} | {number(r['crps'], '.4f')} "
            f"| {number(r['qlike'], '.4f')} | {number(r['qlike_ratio'], '.4f')} "
            f"| {number(r['dm_qlike_p'], '.3f')} | {r['mcs_p']:.3f} | {r['series_in_mcs']} |"
        )
    return "\n".join(calibration) + "\n\n" + "\n".join(scores)


def series_markdown(rows: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Per series: every method's Winkler95 over GARCH's (below 1 beats it)."""
    lines = ["| series | " + " | ".join(METHODS) + " |", "|---|" + "---:|" * len(METHODS)]
    for ticker, row in rows.items():
        cells = " | ".join(f"{row[name]['winkler_95_ratio']:.3f}" for name in METHODS)
        lines.append(f"| {ticker} | {cells} |")
    return "\n".join(lines)


def _null_nan(value: Any) -> Any:
    """``value`` with every NaN as None (JSON has no NaN), floats to 8 significant digits."""
    if isinstance(value, dict):
        return {key: _null_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_null_nan(item) for item in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(f"{value:.8g}")
    if isinstance(value, np.integer):
        return int(value)
    return value


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", nargs="+", help="NVDA (bundled) and watchlist tickers")
    parser.add_argument("--watchlist", type=Path, default=DEFAULT_WATCHLIST)
    parser.add_argument("--days", type=int, default=500, help="scored sessions per series")
    parser.add_argument(
        "--holdout", type=int, default=250, help="sessions cut off the end first (the test days)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="series scored in parallel")
    parser.add_argument("--out", type=Path, help="JSON of the results (and a .md beside it)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    sources = dict(series_list(arguments.watchlist))
    tickers = arguments.tickers or list(sources)
    if unknown := [ticker for ticker in tickers if ticker not in sources]:
        raise SystemExit(f"not in the watchlist: {unknown}")
    if arguments.holdout == 0:
        print("warning: --holdout 0 scores the TEST period; run it once.", file=sys.stderr)
    jobs = [(t, sources[t], arguments.holdout, arguments.days) for t in tickers]
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    with multiprocessing.get_context("spawn").Pool(max(1, arguments.jobs)) as pool:
        for result in pool.imap_unordered(_score, jobs):
            if "error" in result:
                print(f"{result['ticker']} FAILED: {result['error']}", file=sys.stderr)
                continue
            results[result["ticker"]] = result
            elapsed = time.perf_counter() - started
            print(
                f"{result['ticker']}: {result['seconds']:.0f} s ({elapsed:.0f} s)", file=sys.stderr
            )
    ordered = [results[ticker] for ticker in tickers if ticker in results]
    if not ordered:
        return 1
    rows = {result["ticker"]: series_row(result) for result in ordered}
    pooled = pooled_row(ordered, list(rows.values()))
    wall = time.perf_counter() - started
    settings = {
        "holdout": arguments.holdout,
        "days": arguments.days,
        "warmup": WARMUP,
        "selection_window": SELECTION_WINDOW,
        "aci": {"gamma": ACI_GAMMA, "window": ACI_WINDOW},
        "garch": GARCH,
    }
    machine = f"{platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    periods = {r["ticker"]: r["as_of"] for r in ordered}
    table = markdown(pooled, len(ordered))
    print(f"settings: {json.dumps(settings)}\n{machine}; {wall:.0f} s, --jobs {arguments.jobs}")
    print(f"as-of periods: NVDA {periods.get('NVDA')}, others e.g. {list(periods.values())[-1]}")
    print(table)
    print(f"\n90% model confidence set (pooled daily Winkler95): {pooled['mcs_included']}")
    shares = pd.DataFrame([r["stats"]["select60"]["share"] for r in ordered]).mean()
    print("select60 chose " + ", ".join(f"{name} {share:.0%}" for name, share in shares.items()))
    missing = [ticker for ticker in tickers if ticker not in results]
    if arguments.out:
        arguments.out.parent.mkdir(parents=True, exist_ok=True)
        saved = {
            "settings": settings,
            "machine": machine,
            "wall_s": round(wall, 1),
            "jobs": arguments.jobs,
            "periods": periods,
            "series_seconds": {r["ticker"]: r["seconds"] for r in ordered},
            "pooled": pooled,
            "series": rows,
            "select60_share": {r["ticker"]: r["stats"]["select60"]["share"] for r in ordered},
            "failed": missing,
        }
        arguments.out.write_text(json.dumps(_null_nan(saved), indent=1) + "\n")
        arguments.out.with_suffix(".md").write_text(
            f"# Interval contenders, holdout {arguments.holdout}, {arguments.days} days\n\n"
            f"{table}\n\nWinkler95 over GARCH(1,1)-t's, per series:\n\n{series_markdown(rows)}\n"
        )
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
