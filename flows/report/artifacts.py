"""Step 10: what a person sees of a run in the Prefect UI.

Every table reads at a glance: plain headers, money with its dollar sign and the digits a price of
its size needs (a $0.20 stock in significant digits), an interval in one column, few columns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.report.charts import (
    DEFAULT_DAYS,
    NextForecast,
    chart_markdown,
    forecast_vs_realized_png,
    png_data_uri,
    truth_vs_prediction_png,
)
from flows.report.money import money, money_range, percent
from flows.report.text import score_line, served_name, to_markdown
from flows.summary import AlertLine, RunSummary

__all__ = [
    "fleet_table",
    "forecast_rows",
    "money",
    "percent",
    "publish_backfill_report",
    "publish_report",
]


def _key(ticker: str, what: str) -> str:
    # Artifact keys group a ticker's runs in the UI's artifact history (lower-case, dashes).
    return f"{ticker.lower()}-{what}"


def _served(summary: RunSummary) -> str:
    return served_name(summary.served_by)


# The UI's table artifact does not wrap its cells and cuts what passes the page's width (about
# 780 px in a 1400 px window): a few short columns; the long text is in the summary artifact.


def forecast_rows(summary: RunSummary) -> list[dict[str, str]]:
    """The forecast as a one-row table: seven short columns, money formatted."""
    s = summary
    like = s.base_close
    return [
        {
            "Ticker": s.ticker,
            "As of": s.as_of.isoformat(),
            "Target day": s.target_date.isoformat(),
            "Forecast close": money(s.predicted_close, like=like),
            "80% interval": money_range(s.lower_80, s.upper_80, like=like),
            "95% interval": money_range(s.lower_95, s.upper_95, like=like),
            "Served by": _served(s),
        }
    ]


def _chart_title(summary: RunSummary) -> str:
    s = summary
    return (
        f"{s.ticker}: {s.basis} record ({s.n_realized} realized days), "
        f"and the forecast for {s.target_date}"
    )


@task(cache_policy=NO_CACHE)
def publish_report(summary: RunSummary, test_predictions: pd.DataFrame) -> None:
    """Publish the run summary, the forecast table and the truth-vs-prediction chart.

    The chart draws the realized days the summary's table scores (its ``n_realized`` newest)
    and the forecast served for the target day, with its 80% and 95% intervals.
    """
    s = summary
    chart = png_data_uri(
        truth_vs_prediction_png(
            test_predictions,
            ticker=s.ticker,
            days=s.n_realized or DEFAULT_DAYS,
            forecast=NextForecast(
                s.target_date, s.predicted_close, s.lower_80, s.upper_80, s.lower_95, s.upper_95
            ),
            title=_chart_title(s),
        )
    )
    create_markdown_artifact(
        to_markdown(s, chart),
        key=_key(s.ticker, "forecast-summary"),
        description=f"{s.ticker} {s.as_of}: forecast for {s.target_date}",
    )
    create_table_artifact(
        forecast_rows(s),
        key=_key(s.ticker, "forecast"),
        description=f"{s.ticker} {s.as_of}: next-day forecast with 80% and 95% intervals",
    )
    # The chart alone, as a markdown image: an image artifact's page also prints its URL, and
    # this one is a ~100 kB data: URI that ran across the page as text.
    create_markdown_artifact(
        chart_markdown(
            chart,
            ticker=s.ticker,
            what=f"truth vs prediction, {s.basis} record, and the forecast for {s.target_date}",
        ),
        key=_key(s.ticker, "test-window-chart"),
        description=f"{s.ticker} {s.as_of}: truth vs prediction and the next forecast",
    )


# ---- many tickers ----------------------------------------------------------------------------


def alert_kinds(alerts: Iterable[AlertLine]) -> str:
    """The kinds of some alerts, short enough for a table cell: ``data_drift x2 (critical),
    pipeline``; their messages are in each ticker's summary artifact."""
    counts: dict[str, list[AlertLine]] = {}
    for alert in alerts:
        counts.setdefault(alert.kind, []).append(alert)
    parts = []
    for kind, found in counts.items():
        part = kind + (f" x{len(found)}" if len(found) > 1 else "")
        if any(alert.severity == "critical" for alert in found):
            part += " (critical)"
        parts.append(part)
    return ", ".join(parts) or "none"


def alerts_status(alerts: Iterable[AlertLine]) -> str:
    """``ok``, or how many alerts are open and how many this run opened."""
    alerts = tuple(alerts)
    if not alerts:
        return "ok"
    new = sum(1 for alert in alerts if alert.is_new)
    noun = "alert" if len(alerts) == 1 else "alerts"
    return f"{len(alerts)} {noun}" + (f" ({new} new)" if new else "")


def fleet_table(outcomes: Iterable[Any]) -> list[dict[str, str]]:
    """A many-ticker run's table: one row a ticker, with its forecast, 95% interval and open
    alerts (daily runs) or its sessions, scores and alerts opened (backfills). ``outcomes``:
    :class:`flows.fleet.TickerOutcome` values."""
    return [_fleet_row(outcome) for outcome in outcomes]


def _fleet_row(outcome: Any) -> dict[str, str]:
    summary = outcome.summary
    if outcome.error is not None:
        return {
            "Ticker": outcome.ticker,
            "Status": "failed",
            "Target day": "-",
            "Forecast close": "-",
            "95% interval": "-",
            # The error is in the run's state message and log; the failed run opened this one.
            "Open alerts": "pipeline (run failed)",
        }
    if hasattr(summary, "sessions"):  # a BackfillSummary
        return _backfill_row(outcome.ticker, summary)
    return {
        "Ticker": outcome.ticker,
        "Status": alerts_status(summary.alerts),
        "Target day": summary.target_date.isoformat(),
        "Forecast close": money(summary.predicted_close, like=summary.base_close)
        + ("" if summary.served_by == "lstm" else f" ({served_name(summary.served_by)})"),
        "95% interval": money_range(summary.lower_95, summary.upper_95, like=summary.base_close),
        "Open alerts": alert_kinds(summary.alerts),
    }


def _backfill_row(ticker: str, summary: Any) -> dict[str, str]:
    opened = len(summary.alerts_opened)
    status = "ok" if not opened else f"{opened} alert{'s' if opened != 1 else ''} opened"
    like = summary.price_level
    return {
        "Ticker": ticker,
        "Status": status,
        "Sessions": f"{summary.ran} run, {summary.skipped} stored",
        "Realized": str(summary.realized),
        "RMSE": money(summary.rmse, like=like),
        "Naive RMSE": money(summary.naive_rmse, like=like),
        "In 95%": percent(summary.inside_95, places=0),
    }


# ---- backfill --------------------------------------------------------------------------------

_MAX_ROWS = 60


def _flag(value) -> str:
    return "" if value is None or pd.isna(value) else ("yes" if bool(value) else "no")


def backfill_markdown(summary: Any, accuracy: pd.DataFrame, chart_uri: str | None) -> str:
    """A backfill's summary artifact: what was forecast over the range, how it scored (a chart
    of forecast vs realized with the intervals), the alerts it opened, then its timings."""
    s = summary
    like = s.price_level
    lines = [f"# {s.ticker} backfill {s.start} .. {s.end}", ""]
    lines += [
        f"| {s.ticker} backfill | |",
        "|---|---|",
        f"| Sessions | {s.ran} run, {s.skipped} already stored, of {s.sessions} (`{s.source}`) |",
        f"| Forecasts scored | {score_line(s)} |",
        f"| Models | {_counts(s.actions)}; served by {_counts(s.served_by)} |",
        f"| Alerts opened | {len(s.alerts_opened) or 'none'} |",
        f"| Time | {s.seconds:.0f} s ({s.seconds / s.ran if s.ran else 0:.1f} s a session) |",
        "",
    ]
    if chart_uri:
        lines += ["## Forecast vs realized", "", f"![{s.ticker} forecast vs realized]({chart_uri})"]
        lines.append("")
    lines += ["## Alerts opened during the range", ""]
    lines += [f"- {line}" for line in s.alerts_opened] or ["None."]
    lines.append("")
    if not accuracy.empty:
        shown = accuracy.tail(_MAX_ROWS)
        lines += ["## Forecasts", ""]
        if len(shown) < len(accuracy):
            lines += [f"The newest {len(shown)} of {len(accuracy)}.", ""]
        lines += [
            "| As of | Target | Forecast | 80% interval | 95% interval | Actual | Error | In 95% |",
            "|---|---|---:|---|---|---:|---:|---|",
        ]
        for row in shown.itertuples(index=False):
            lines.append(
                f"| {_day(row.as_of_date)} | {_day(row.target_date)} "
                f"| {money(row.predicted_close, like=like)} "
                f"| {money_range(row.lower_80, row.upper_80, like=like)} "
                f"| {money_range(row.lower_95, row.upper_95, like=like)} "
                f"| {money(row.actual_close, like=like, missing='waiting')} "
                f"| {money(row.error, like=like, missing='')} | {_flag(row.inside_95)} |"
            )
        lines.append("")
    steps = ", ".join(
        f"{name} {seconds:.0f} s"
        for name, seconds in sorted(s.step_seconds.items(), key=lambda item: -item[1])
    )
    lines += ["## Time by step", "", steps or "Nothing ran.", ""]
    return "\n".join(lines)


def _day(value) -> str:
    if isinstance(value, dt.datetime):  # pandas gives Timestamps
        return value.date().isoformat()
    return value.isoformat() if isinstance(value, dt.date) else str(value)[:10]


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counter.items())) or "-"


def publish_backfill_report(summary: Any, accuracy: pd.DataFrame) -> None:
    """The backfill's summary artifact (``accuracy``: the range's stored forecasts with their
    realized closes, ``db.repository.read_forecast_accuracy``'s columns)."""
    s = summary
    chart = None
    if not accuracy.empty:
        title = f"{s.ticker}: forecast vs realized, {s.start} .. {s.end}"
        chart = png_data_uri(forecast_vs_realized_png(accuracy, ticker=s.ticker, title=title))
    create_markdown_artifact(
        backfill_markdown(s, accuracy, chart),
        key=_key(s.ticker, "backfill-summary"),
        description=f"{s.ticker} backfill {s.start} .. {s.end}: {score_line(s)}",
    )
