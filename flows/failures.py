"""A failed run's alert: opened (or refreshed) outside the run, and delivered at once.

The single-ticker flow's `on_failure` hook calls :func:`record_failed_run`; a many-ticker run
calls :func:`report_failed_run` for each ticker that failed. Neither ever masks the run's own
error: when the settings or the database cannot take the alert, it is logged and dropped.
"""

from __future__ import annotations

import datetime as dt
import logging

from db.engine import Session, get_engine, unit_of_work
from db.migrate import ensure_schema
from db.repository import list_runs
from flows.alerts import StoredAlert, record_failure
from flows.notify import deliver
from flows.settings import get_settings
from forecasting.errors import ConfigurationError
from forecasting.monitoring.quality import flow_run_failure


def record_failed_run(flow, flow_run, state) -> None:
    """`on_failure` hook: open a critical pipeline alert for the failed run, and deliver it."""
    parameters = flow_run.parameters or {}
    as_of = parameters.get("as_of")
    error = state.result(raise_on_failure=False)
    report_failed_run(
        ticker=parameters.get("ticker", "NVDA"),
        as_of=dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of,
        error=error if isinstance(error, BaseException) else state.message or "",
        flow_run_id=str(flow_run.id),
    )


def report_failed_run(
    *,
    ticker: str,
    as_of: dt.date | None,
    error: BaseException | str,
    flow_run_id: str | None,
    database_url: str | None = None,
) -> StoredAlert | None:
    """Open (or refresh) the ticker's critical pipeline alert for a failed run, and deliver it.

    Used by the single-ticker flow's `on_failure` hook and, per failed ticker, by a many-ticker
    run. Returns the alert, or None when the settings or the database cannot take it (logged:
    the run's own error is what the caller reports).
    """
    logger = logging.getLogger(__name__)
    finding = flow_run_failure(error)
    try:
        # An invalid setting may be what failed the run: say so in a line, never a traceback.
        settings = get_settings()
    except ConfigurationError as invalid:
        logger.error("could not record the failed run of %s: %s", ticker, invalid)
        return None
    try:
        engine = get_engine(database_url or settings.database_url)
        ensure_schema(engine)
        with unit_of_work(engine) as session:
            alert = record_failure(
                session,
                ticker=ticker,
                as_of=as_of
                or _day_stored_by(session, ticker, flow_run_id)
                or dt.datetime.now(dt.UTC).date(),
                finding=finding,
                flow_run_id=flow_run_id,
            )
    except Exception as failure:  # the database may be what failed; never mask the run's error
        logger.error("could not record the failed run of %s: %s", ticker, failure)
        return None
    if alert.is_new:
        deliver(
            alert,
            webhook_url=settings.alert_webhook_url.get_secret_value(),
            notification_block=settings.alert_notification_block,
        )
    return alert


def _day_stored_by(session: Session, ticker: str, flow_run_id: str | None) -> dt.date | None:
    """The as-of date of the day this flow run stored, if it got that far (a run without
    ``--as-of`` that failed after storing it, e.g. in its report): its failure belongs to that
    day, not to today's date, where a failed runs row would stay after every good rerun."""
    if flow_run_id is None:
        return None
    for run in reversed(list_runs(session=session, ticker=ticker)):
        if run.flow_run_id == flow_run_id:
            return run.as_of_date
    return None
