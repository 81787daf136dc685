"""Step 9: score and watch. The checks, the alert lifecycle in the store, and alert delivery.

The checks themselves are pure (`forecasting.monitoring.drift`, `forecasting.monitoring.alerting`);
this module reads what they need from the database, applies their verdict to the `alerts` table
inside the run's transaction, and, once that transaction has committed, tells people: a Prefect
event per new alert (which Automations route anywhere), plus an optional webhook or notification
block.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.exceptions import MissingContextError

from db.engine import Session, get_engine, unit_of_work
from db.migrate import ensure_schema
from db.repository import (
    add_alert,
    get_open_alert,
    list_runs,
    mark_run_failed,
    open_alerts,
    read_realized_errors,
    record_drift_metrics,
    resolve_alert,
    run_for,
    touch_alert,
)
from flows.retry import io_task
from flows.settings import get_settings
from flows.summary import AlertLine
from flows.webhook_url import mask_url, mask_urls
from forecasting.config import DriftConfig
from forecasting.errors import ConfigurationError, one_line
from forecasting.monitoring.alerting import RETRAIN_KINDS, Finding, reconcile
from forecasting.monitoring.drift import run_checks
from forecasting.monitoring.performance import relative_rmse
from forecasting.monitoring.quality import flow_run_failure

EVENT_PREFIX = "nvda-forecast.alert"
WEBHOOK_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class StoredAlert:
    """An alert as the run knows it after persisting: for the summary and for delivery."""

    id: int
    ticker: str
    kind: str
    severity: str
    metric: str
    value: float | None
    threshold: float | None
    message: str
    as_of_date: dt.date
    flow_run_id: str | None
    is_new: bool

    def line(self) -> AlertLine:
        """How the run summary shows it."""
        return AlertLine(self.kind, self.severity, self.message, self.is_new)

    def payload(self) -> dict:
        """The JSON body of the event payload and of the webhook."""
        return {
            "alert_id": self.id,
            "ticker": self.ticker,
            "kind": self.kind,
            "severity": self.severity,
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            # For people (notification templates): 1.807 and 449, not 1.8073711174054015, 449.0.
            "value_text": format_number(self.value),
            "threshold_text": format_number(self.threshold),
            "message": self.message,
            "as_of_date": self.as_of_date.isoformat(),
            "flow_run_id": self.flow_run_id,
        }


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


def store_findings(
    session: Session,
    *,
    ticker: str,
    as_of: dt.date,
    findings: list[Finding],
    model_version_id: int | None,
    flow_run_id: str | None,
    run_id: int | None = None,
    move_alerts: bool = True,
) -> list[StoredAlert]:
    """Write the run's drift metrics and apply the alert lifecycle; return the open alerts.

    ``run_id``: the run the rows belong to (default: the day's run, created if need be).
    ``move_alerts=False`` (a replay of an old day) stores the metrics only: the alerts describe
    the ticker's present, and a replay must not open, refresh or resolve them."""
    if run_id is None:
        run_id = run_for(session=session, ticker=ticker, as_of_date=as_of)
    record_drift_metrics(
        session=session,
        ticker=ticker,
        as_of_date=as_of,
        rows=[f.to_dict() for f in findings],
        model_version_id=model_version_id,
        flow_run_id=flow_run_id,
        run_id=run_id,
    )
    current = {(a.kind, a.metric): a for a in open_alerts(session=session, ticker=ticker)}
    if not move_alerts:
        return [_stored(alert, is_new=False) for alert in current.values()]
    verdict = reconcile(current.keys(), findings)
    new_ids = set()
    for finding in verdict.to_open:
        new_ids.add(_open_alert(session, ticker, as_of, finding, flow_run_id, run_id).id)
    for finding in verdict.to_keep:
        touch_alert(
            session=session,
            alert=current[finding.key],
            as_of_date=as_of,
            value=finding.value,
            threshold=finding.threshold,
            severity=finding.severity if finding.breached else None,
            message=finding.message if finding.breached else None,
        )
    for key in verdict.to_resolve:
        resolve_alert(session=session, alert=current[key])
    return [
        _stored(alert, is_new=alert.id in new_ids)
        for alert in open_alerts(session=session, ticker=ticker)
    ]


def record_failure(
    session: Session, *, ticker: str, as_of: dt.date, finding: Finding, flow_run_id: str | None
) -> StoredAlert:
    """Mark the day's run failed (unless an earlier attempt of it succeeded) and open (or
    refresh) the alert of a failed run, outside the normal checks."""
    run = mark_run_failed(
        session=session,
        ticker=ticker,
        as_of_date=as_of,
        error=finding.message,
        flow_run_id=flow_run_id,
    )
    alert = get_open_alert(session=session, ticker=ticker, kind=finding.kind, metric=finding.metric)
    if alert is not None:
        touch_alert(session=session, alert=alert, as_of_date=as_of, message=finding.message)
        return _stored(alert, is_new=False)
    return _stored(_open_alert(session, ticker, as_of, finding, flow_run_id, run.id), is_new=True)


def _open_alert(
    session: Session,
    ticker: str,
    as_of: dt.date,
    finding: Finding,
    flow_run_id: str | None,
    run_id: int,
):
    return add_alert(
        session=session,
        ticker=ticker,
        kind=finding.kind,
        severity=finding.severity,
        metric=finding.metric,
        message=finding.message,
        as_of_date=as_of,
        value=finding.value,
        threshold=finding.threshold,
        flow_run_id=flow_run_id,
        run_id=run_id,
    )


def _stored(alert, *, is_new: bool) -> StoredAlert:
    return StoredAlert(
        id=alert.id,
        ticker=alert.ticker,
        kind=alert.kind,
        severity=alert.severity,
        metric=alert.metric,
        value=alert.value,
        threshold=alert.threshold,
        message=alert.message,
        as_of_date=alert.as_of_date,
        flow_run_id=alert.flow_run_id,
        is_new=is_new,
    )


@dataclass(frozen=True)
class Delivery:
    """What telling people about a run's alerts came to."""

    new: int
    """Alerts this run opened (each one told through every configured channel)."""
    failures: int
    """Channel deliveries that failed (an event, a webhook POST, a block): logged as warnings."""


@task(cache_policy=NO_CACHE)
def deliver_alerts(
    alerts: list[StoredAlert], *, webhook_url: str, notification_block: str
) -> Delivery:
    """Emit a Prefect event per new alert, and send it to the configured webhook or block.

    Never raises: the alerts are stored with the run's forecast when this runs, and a channel
    that fails (a malformed URL, a refused POST, a broken block) must not fail that run.
    """
    new = [alert for alert in alerts if alert.is_new]
    failures = sum(
        deliver(alert, webhook_url=webhook_url, notification_block=notification_block)
        for alert in new
    )
    if failures:
        _logger().warning(
            "%d new alert%s, %d deliver%s failed (the alerts are stored)",
            len(new),
            "" if len(new) == 1 else "s",
            failures,
            "y" if failures == 1 else "ies",
        )
    return Delivery(len(new), failures)


def deliver(alert: StoredAlert, *, webhook_url: str, notification_block: str) -> int:
    """Tell people about one new alert: the event always, the webhook and block if set.

    Returns how many of those channels failed; each failure is a warning, never an exception.
    """
    failures = 0
    if not _guarded(alert, "emitted as a Prefect event", lambda: emit_event(**alert_event(alert))):
        failures += 1
    if webhook_url and not _guarded(
        alert,
        f"delivered to the webhook {mask_url(webhook_url)}",
        lambda: post_webhook(webhook_url, alert),
    ):
        failures += 1
    if notification_block and not _guarded(
        alert,
        f"sent through block {notification_block}",
        lambda: notify_block(notification_block, alert),
    ):
        failures += 1
    return failures


def _guarded(alert: StoredAlert, what: str, send: Callable[[], bool | None]) -> bool:
    """Run one channel's ``send``; False (after a warning) if it failed in any way."""
    try:
        return send() is not False
    except Exception as error:  # any failure: the alert is stored, the run must not fail
        _logger().warning("alert %d not %s: %s", alert.id, what, mask_urls(one_line(error)))
        return False


def format_number(value: float | None) -> str:
    """A metric as people read it: four significant digits, no trailing ``.0``."""
    return "n/a" if value is None else f"{value:.4g}"


RESOURCE_NAME_LIMIT = 200
"""The event's resource name (what the UI's event feed shows) is cut to this many characters."""


def alert_event(alert: StoredAlert) -> dict:
    """`nvda-forecast.alert.<kind>.<severity>` about the ticker, for Prefect Automations to route.

    The Prefect UI's event feed lists an event by its name (as the title: ``Nvda Forecast Alert
    Data Drift Warning``) and its resource's ``prefect.resource.name``; the payload is only in
    the raw JSON. So the name carries the kind and the severity, and the resource's name says
    which ticker and what happened: ``NVDA data drift warning: returns are 2.40x as volatile``.
    """
    title = f"{alert.ticker} {alert.kind.replace('_', ' ')} {alert.severity}: {alert.message}"
    if len(title) > RESOURCE_NAME_LIMIT:
        title = title[: RESOURCE_NAME_LIMIT - 3] + "..."
    event = {
        "event": f"{EVENT_PREFIX}.{alert.kind}.{alert.severity}",
        "resource": {
            "prefect.resource.id": f"nvda-forecast.ticker.{alert.ticker}",
            "prefect.resource.name": title,
            "nvda-forecast.ticker": alert.ticker,
            "nvda-forecast.kind": alert.kind,
            "nvda-forecast.severity": alert.severity,
            "nvda-forecast.metric": alert.metric,
        },
        "payload": alert.payload(),
    }
    if alert.flow_run_id:
        # Inside a run Prefect adds the run's resources itself; the on-failure hook runs
        # outside it, so name the flow run explicitly (the UI links the event to the run).
        event["related"] = [
            {
                "prefect.resource.id": f"prefect.flow-run.{alert.flow_run_id}",
                "prefect.resource.role": "flow-run",
            }
        ]
    return event


def _logger():
    # The on-failure hook delivers too, outside any task: fall back to the module's logger.
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def post_webhook(url: str, alert: StoredAlert) -> bool:
    """POST the alert as JSON; a failure of any kind is logged, not raised: the alert is already
    stored. True if the webhook took it."""
    body = {"text": f"[{alert.severity}] {alert.ticker} {alert.kind}: {alert.message}"}
    body.update(alert.payload())
    try:
        response = httpx.post(url, json=body, timeout=WEBHOOK_TIMEOUT_S)
    except Exception as error:
        # httpx's messages can quote the URL, whose path carries the token: never log them raw.
        if isinstance(error, httpx.HTTPError):
            reason = mask_urls(str(error).replace(url, mask_url(url))) or type(error).__name__
        else:  # InvalidURL, a ValueError from deeper down: say what it was
            reason = mask_urls(one_line(error).replace(url, mask_url(url)))
        _logger().warning(
            "alert %d not delivered to the webhook %s: %s", alert.id, mask_url(url), reason
        )
        return False
    if response.is_error:
        _logger().warning(
            "alert %d not delivered to the webhook %s: HTTP %d %s",
            alert.id,
            mask_url(url),
            response.status_code,
            response.reason_phrase,
        )
        return False
    return True


def notify_block(name: str, alert: StoredAlert) -> bool:
    """Send the alert through a Prefect notification block (Slack, e-mail, ...); True if sent."""
    from prefect.blocks.core import Block

    try:
        block = Block.load(name)
        block.notify(
            body=alert.message,
            subject=f"nvda-forecast {alert.severity}: {alert.ticker} {alert.kind}",
        )
    except Exception as error:  # a broken channel must not fail the forecast
        reason = mask_urls(str(error)) or type(error).__name__
        _logger().warning("alert %d not sent through block %s: %s", alert.id, name, reason)
        return False
    return True


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
