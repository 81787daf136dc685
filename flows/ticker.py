"""One ticker's work, however it was asked for: the one entry point below the flows.

`daily_forecast`, `backfill`, each ticker's task of a many-ticker run and so the command line
all build a :class:`flows.job.TickerJob` and call :func:`run_ticker`: a day runs
`flows.pipeline.forecast_day` once, a range runs it for each session (`flows.sessions`). The
ticker's slot (flows/concurrency.py) is taken here unless the caller holds it.
"""

from __future__ import annotations

from flows.concurrency import ticker_slot
from flows.job import TickerJob
from flows.pipeline import forecast_day
from flows.report.artifacts import publish_backfill_report, publish_report
from flows.sessions import BackfillSummary, backfill_range
from flows.settings import Settings, get_settings
from flows.summary import RunSummary
from flows.tasks import open_store


def run_ticker(job: TickerJob, flow_run_id: str | None) -> RunSummary | BackfillSummary:
    """Run ``job`` and publish its report; its summary (a day's, or a range's)."""
    settings = settings_for(job.database_url)
    open_store(job.database_url)
    with ticker_slot(job.ticker, held=job.slot_held):
        if job.span == "range":
            summary, accuracy = backfill_range(job, settings, flow_run_id, forecast_day)
        else:
            summary, chart = forecast_day(job, settings, flow_run_id)
    if job.span == "range":
        publish_backfill_report(summary, accuracy)
    else:
        publish_report(summary, chart)
    return summary


def settings_for(database_url: str) -> Settings:
    """This process's settings, pointed at the job's database (a Dask worker's environment may
    name another)."""
    settings = get_settings()
    if settings.database_url == database_url:
        return settings
    return settings.model_copy(update={"database_url": database_url})
