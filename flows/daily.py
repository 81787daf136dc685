"""The daily flow: one ticker, one as-of date, ARCHITECTURE.md's ten steps."""

import datetime as dt

from prefect import flow
from prefect.runtime import flow_run

from flows.concurrency import ticker_guard
from flows.pipeline import forecast_day
from flows.presentation.report import publish_report
from flows.run_names import daily_run_name, day_name, rename_flow_run
from flows.settings import get_settings
from flows.summary import RunSummary
from flows.tasks import open_store
from flows.watch import record_failed_run
from forecasting.policy import Mode
from forecasting.tickers import normalize_ticker


@flow(
    name="daily-forecast",
    # "NVDA 2025-02-11", or "NVDA latest" until the data names the day (renamed below).
    flow_run_name=daily_run_name,
    timeout_seconds=3600,
    on_failure=[record_failed_run],
)
def daily_forecast(
    ticker: str = "NVDA",
    source: str = "yahoo",
    as_of: dt.date | None = None,
    mode: Mode = "auto",
    adjust_splits: bool = False,
) -> RunSummary:
    """Forecast the next close of one ticker and store everything the run learned."""
    settings = get_settings()
    ticker = normalize_ticker(ticker)
    database_url = open_store(settings.database_url)
    # One run per ticker at a time, across deployments and manual runs (flows/concurrency.py).
    with ticker_guard(ticker):
        summary, record = forecast_day(
            database_url,
            settings,
            ticker=ticker,
            source=source,
            as_of=as_of,
            mode=mode,
            flow_run_id=flow_run.id,
            adjust_splits=adjust_splits,
        )
    if as_of is None or summary.as_of != as_of:
        rename_flow_run(flow_run.id, day_name(ticker, summary.as_of))
    publish_report(summary, record)
    return summary
