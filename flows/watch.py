"""Step 9: score and watch. The checks, and the alert of a failed run.

The checks themselves are pure (`forecasting.monitoring.drift`, `forecasting.monitoring.alerting`);
this module reads what they need from the database. Their findings are applied to the `alerts`
table by `flows.alerts` inside the run's transaction and delivered by `flows.notify` once it has
committed. A failed run's alert is opened and delivered here, outside the run.
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
from prefect import get_run_logger

from db.engine import Session, get_engine, unit_of_work
from db.migrate import ensure_schema
from db.repository import list_runs, open_alerts, read_realized_errors
from flows.alerts import StoredAlert, record_failure
from flows.notify import deliver
from flows.retry import io_task
from flows.settings import get_settings
from forecasting.config import DriftConfig
from forecasting.errors import ConfigurationError
from forecasting.monitoring.alerting import RETRAIN_KINDS, Finding
from forecasting.monitoring.drift import run_checks
from forecasting.monitoring.performance import relative_rmse
from forecasting.monitoring.quality import flow_run_failure


@io_task
def open_drift_alerts(database_url: str, ticker: str, since: dt.date | None) -> tuple[str, ...]:
    """Kinds of open drift alerts opened after ``since``, the last full retrain's as-of date."""
    with unit_of_work(get_engine(database_url)) as session:
        alerts = open_alerts(session=session, ticker=ticker)
    # A retrain on data through ``since`` already answered alerts opened up to that day: a
    # drift that lasts months must not turn every day into a retrain.
    return tuple(
        sorted(
            {
                alert.kind
                for alert in alerts
                if alert.kind in RETRAIN_KINDS and (since is None or alert.as_of_date > since)
            }
        )
    )


@io_task
def watch(
    database_url: str,
    ticker: str,
    prices: pd.DataFrame,
    *,
    judge_as_of: dt.date | None,
    train_window: tuple[dt.date, dt.date],
    reference: pd.DataFrame,
    restated: bool,
    restatement: str | None = None,
    download_failed: bool,
    challenger_rejected: bool | None,
    promotion_reason: str,
    config: DriftConfig,
) -> list[Finding]:
    """Run the drift, performance, data-quality and pipeline checks; every metric, every day.

    ``reference`` is the held-out record whose error the realized error is compared with.
    """
    with unit_of_work(get_engine(database_url)) as session:
        # Only closes up to the run's last bar: a replay must not see later days.
        realized = read_realized_errors(
            session=session, ticker=ticker, through=prices.index[-1].date(), live_only=True
        )
    findings = run_checks(
        prices,
        now=dt.datetime.now(dt.UTC),
        config=config,
        as_of=judge_as_of,
        train_start=train_window[0],
        train_end=train_window[1],
        realized=realized,
        reference_relative_rmse=relative_rmse(reference),
        restated=restated,
        restatement=restatement,
        download_failed=download_failed,
        challenger_rejected=challenger_rejected,
        promotion_reason=promotion_reason,
    )
    breached = [f for f in findings if f.breached]
    get_run_logger().info(
        "checks: %d metrics, %d breached%s",
        len(findings),
        len(breached),
        "".join(f"; {f.metric} {f.value:.3g} (threshold {f.threshold:g})" for f in breached),
    )
    return findings


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
