"""The terminal tables of ``nvda-forecast history`` and ``alerts`` (read-only, no Prefect)."""

from __future__ import annotations

import datetime as dt
import textwrap

import pandas as pd

from db.engine import get_engine, mask_url, unit_of_work
from db.migrate import current_revision
from db.repository import list_alerts, read_forecast_accuracy
from flows.report.money import money, percent
from flows.settings import get_settings
from forecasting.errors import NvdaForecastError
from forecasting.monitoring.performance import relative_rmse

WIDTH = 100
"""The terminal the tables are made for: nothing wider than this (issue 26)."""


def _engine_with_schema():
    engine = get_engine(get_settings().database_url)
    if current_revision(engine) is None:
        raise NvdaForecastError(
            f"{mask_url(engine.url)} has no nvda-forecast tables yet; "
            "run `nvda-forecast run` (or `nvda-forecast db upgrade`) first"
        )
    return engine


def _blank(value) -> bool:
    return value is None or bool(pd.isna(value))


def _flag(value) -> str:
    return "" if _blank(value) else ("yes" if bool(value) else "no")


def forecast_history_table(*, ticker: str, days: int) -> str:
    """The ``days`` most recent forecasts with their realized error, oldest first."""
    with unit_of_work(_engine_with_schema()) as session:
        frame = read_forecast_accuracy(session=session, ticker=ticker, limit=days)
    if frame.empty:
        return f"No forecasts for {ticker} yet: run `nvda-forecast run --ticker {ticker}`."
    rows = frame.to_dict("records")

    def amounts(column: str) -> list[str]:
        # Each row at the precision of its own last close: a 2004 row of a $0.20 stock keeps
        # four significant digits beside the cents of a 2025 row.
        return [money(row[column], like=row["base_close"], missing="") for row in rows]

    table = pd.DataFrame(
        {
            "as of": frame["as_of_date"].astype(str),
            "target": frame["target_date"].astype(str),
            "forecast": amounts("predicted_close"),
            "80% interval": [
                f"{low}-{high}"
                for low, high in zip(amounts("lower_80"), amounts("upper_80"), strict=True)
            ],
            "actual": amounts("actual_close"),
            "error": amounts("error"),
            "% err": frame["abs_pct_error"].map(lambda v: "" if _blank(v) else f"{v:.2f}"),
            "naive err": amounts("naive_error"),
            "dir ok": frame["direction_hit"].map(_flag),
            "in 80": frame["inside_80"].map(_flag),
            "in 95": frame["inside_95"].map(_flag),
        }
    )
    footer = textwrap.fill(_history_footer(frame), WIDTH)
    rows_text = [line.rstrip() for line in table.to_string(index=False).splitlines()]
    return "\n".join([*rows_text, "", footer])


def _history_footer(frame: pd.DataFrame) -> str:
    """Scale-free figures: the rows may span a $0.20 stock of 2004 and its $130 of 2025, whose
    dollar errors a single RMSE would mix (the newest prices would drown the oldest)."""
    realized = frame.dropna(subset=["actual_close"])
    pending = len(frame) - len(realized)
    if realized.empty:
        return f"No realized forecasts yet ({pending} waiting for their target day)."
    rmse = relative_rmse(realized, "predicted_close")
    naive_rmse = relative_rmse(realized, "base_close")
    hits = realized["direction_hit"].astype("float").mean()
    inside_80 = realized["inside_80"].astype("float").mean()
    inside_95 = realized["inside_95"].astype("float").mean()
    return (
        f"{len(realized)} realized: RMSE {percent(rmse)} of the last close vs naive "
        f"{percent(naive_rmse)}, direction right {percent(hits, places=0)}, "
        f"inside 80% {percent(inside_80, places=0)}, inside 95% {percent(inside_95, places=0)}"
        + (f"; {pending} waiting for their target day" if pending else "")
    )


def _resolved(when: dt.datetime | None) -> str:
    return "open" if when is None else f"resolved {when:%Y-%m-%d %H:%M}"


def alerts_table(*, ticker: str | None, include_resolved: bool) -> str:
    """Open alerts (and resolved ones when asked), oldest first: one line of facts each, its
    kind and message wrapped below it, all within :data:`WIDTH` columns."""
    with unit_of_work(_engine_with_schema()) as session:
        alerts = list_alerts(session=session, ticker=ticker, include_resolved=include_resolved)
        facts = [
            [
                str(a.id),
                a.ticker,
                a.severity,
                a.metric,
                str(a.as_of_date),
                str(a.last_seen_as_of),
                *([_resolved(a.resolved_at)] if include_resolved else []),
            ]
            for a in alerts
        ]
        messages = [f"{a.kind}: {a.message}" for a in alerts]
    if not alerts:
        scope = f" for {ticker}" if ticker else ""
        return f"No {'' if include_resolved else 'open '}alerts{scope}."
    header = ["id", "ticker", "severity", "metric", "opened", "last seen"]
    header += ["status (UTC)"] if include_resolved else []
    widths = [max(len(row[i]) for row in [header, *facts]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [cells[0].rjust(widths[0])]
        padded += [cell.ljust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return " ".join(padded).rstrip()

    indent = " " * (widths[0] + 1)
    lines = [line(header)]
    for row, message in zip(facts, messages, strict=True):
        lines.append(line(row))
        lines.append(textwrap.fill(message, WIDTH, initial_indent=indent, subsequent_indent=indent))
    return "\n".join(lines)
