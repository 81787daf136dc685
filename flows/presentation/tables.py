"""Plain-text tables for the CLI's `history` and `alerts` commands (read-only, no Prefect)."""

from __future__ import annotations

import math

import pandas as pd

from db.engine import get_engine, mask_url, unit_of_work
from db.migrate import current_revision
from db.repository import list_alerts, read_forecast_accuracy
from flows.presentation.money import decimals_for
from flows.settings import get_settings
from forecasting.errors import NvdaForecastError


def _engine_with_schema():
    engine = get_engine(get_settings().database_url)
    if current_revision(engine) is None:
        raise NvdaForecastError(
            f"{mask_url(engine.url)} has no nvda-forecast tables yet; "
            "run `nvda-forecast run` (or `nvda-forecast db upgrade`) first"
        )
    return engine


def _money(value: float | None, like: float | None = None) -> str:
    # A $0.20 stock keeps four significant digits ("0.2034", not "0.20"); ``like`` sizes an
    # error by its price.
    if value is None or pd.isna(value):
        return ""
    return f"{value:,.{decimals_for(like if like is not None else value)}f}"


def _flag(value) -> str:
    return "" if value is None or pd.isna(value) else ("yes" if bool(value) else "no")


def forecast_history_table(*, ticker: str, days: int) -> str:
    """The ``days`` most recent forecasts with their realized error, oldest first."""
    with unit_of_work(_engine_with_schema()) as session:
        frame = read_forecast_accuracy(session=session, ticker=ticker, limit=days)
    if frame.empty:
        return f"No forecasts for {ticker} yet: run `nvda-forecast run --ticker {ticker}`."
    likes = frame["base_close"].astype(float).tolist()

    def money(column: str) -> list[str]:
        return [_money(v, like) for v, like in zip(frame[column], likes, strict=True)]

    table = pd.DataFrame(
        {
            "as of": frame["as_of_date"].astype(str),
            "target": frame["target_date"].astype(str),
            "forecast": money("predicted_close"),
            "80% interval": [
                f"{_money(low, like)}-{_money(high, like)}"
                for low, high, like in zip(frame["lower_80"], frame["upper_80"], likes, strict=True)
            ],
            "actual": money("actual_close"),
            "error": money("error"),
            "abs % err": frame["abs_pct_error"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}"),
            "naive error": money("naive_error"),
            "direction": frame["direction_hit"].map(_flag),
            "in 80%": frame["inside_80"].map(_flag),
            "in 95%": frame["inside_95"].map(_flag),
        }
    )
    lines = [table.to_string(index=False), "", _history_footer(frame)]
    return "\n".join(lines)


def _history_footer(frame: pd.DataFrame) -> str:
    realized = frame.dropna(subset=["actual_close"])
    pending = len(frame) - len(realized)
    if realized.empty:
        return f"No realized forecasts yet ({pending} waiting for their target day)."
    rmse = math.sqrt((realized["error"].astype(float) ** 2).mean())
    naive_rmse = math.sqrt((realized["naive_error"].astype(float) ** 2).mean())
    like = float(realized["base_close"].astype(float).median())
    hits = realized["direction_hit"].astype("float").mean()
    inside_80 = realized["inside_80"].astype("float").mean()
    inside_95 = realized["inside_95"].astype("float").mean()
    return (
        f"{len(realized)} realized: RMSE ${_money(rmse, like)} "
        f"vs naive ${_money(naive_rmse, like)}, "
        f"direction {hits:.0%}, inside 80% {inside_80:.0%}, inside 95% {inside_95:.0%}"
        + (f"; {pending} waiting for their target day" if pending else "")
    )


def alerts_table(*, ticker: str | None, include_resolved: bool) -> str:
    """Open alerts (and resolved ones when asked), oldest first."""
    with unit_of_work(_engine_with_schema()) as session:
        alerts = list_alerts(session=session, ticker=ticker, include_resolved=include_resolved)
    if not alerts:
        scope = f" for {ticker}" if ticker else ""
        return f"No {'' if include_resolved else 'open '}alerts{scope}."
    table = pd.DataFrame(
        {
            "id": [a.id for a in alerts],
            "ticker": [a.ticker for a in alerts],
            "status": [a.status for a in alerts],
            "severity": [a.severity for a in alerts],
            "kind": [a.kind for a in alerts],
            "metric": [a.metric for a in alerts],
            "opened": [str(a.as_of_date) for a in alerts],
            "last seen": [str(a.last_seen_as_of) for a in alerts],
            "message": [a.message for a in alerts],
        }
    )
    return table.to_string(index=False)
