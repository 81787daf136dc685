"""`nvda-forecast backfill`: the daily pipeline for every session of a range, oldest first.

One process and one flow run: each session runs exactly what `nvda-forecast run --as-of D` runs
(ingest, train or fine-tune, evaluate, serve, watch, persist), so a backfilled day and a live day
differ in SQL only in their flow-run id. Every session commits on its own: interrupted at day k,
a rerun skips the sessions that already have a served forecast and continues; a bad day stops
the backfill with one line naming it, and the days before it stay stored (flows/sessions.py).
"""

import datetime as dt

from prefect import flow
from prefect.runtime import flow_run

from flows.job import TickerJob, job_for
from flows.run_names import backfill_run_name
from flows.sessions import BackfillError, BackfillSummary
from flows.settings import get_settings
from flows.ticker import run_ticker
from forecasting.policy import Mode

__all__ = ["BackfillError", "BackfillSummary", "backfill", "range_job"]


# "NVDA backfill 2025-01-02..2025-01-31"
@flow(name="backfill", flow_run_name=backfill_run_name, timeout_seconds=24 * 3600)
def backfill(
    ticker: str = "NVDA",
    source: str = "yahoo",
    start: dt.date | None = None,
    end: dt.date | None = None,
    mode: Mode = "auto",
    redo: bool = False,
    adjust_splits: bool = False,
) -> BackfillSummary:
    """Run the daily pipeline for every session from ``start`` to ``end`` the source has."""
    options = {"mode": mode, "redo": redo, "adjust_splits": adjust_splits}
    job = range_job(ticker, source, get_settings().database_url, start, end, **options)
    return run_ticker(job, flow_run.id)


def range_job(
    ticker: str,
    source: str,
    database_url: str,
    start: dt.date | None,
    end: dt.date | None,
    **options,
) -> TickerJob:
    """The job of a backfill, its range checked first."""
    if start is None or end is None or start > end:
        raise BackfillError(f"give --from and --to with --from <= --to (got {start} .. {end})")
    return job_for(ticker, source, database_url, span="range", start=start, end=end, **options)
