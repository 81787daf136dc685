"""The daily flow: one ticker, one as-of date, ARCHITECTURE.md's ten steps."""

import datetime as dt

from prefect import flow
from prefect.runtime import flow_run

from flows.failures import record_failed_run
from flows.job import job_for
from flows.run_names import daily_run_name, day_name, rename_flow_run
from flows.settings import get_settings
from flows.summary import RunSummary
from flows.ticker import run_ticker
from forecasting.policy import Mode


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
    options = {"as_of": as_of, "mode": mode, "adjust_splits": adjust_splits}
    job = job_for(ticker, source, get_settings().database_url, **options)
    summary = run_ticker(job, flow_run.id)
    if as_of is None or summary.as_of != as_of:
        rename_flow_run(flow_run.id, day_name(job.ticker, summary.as_of))
    return summary
