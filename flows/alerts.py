"""The alert lifecycle in the store: a run's findings open, refresh and resolve alerts.

The verdict is pure (`forecasting.monitoring.alerting.reconcile`); this module applies it to the
`alerts` table (`db.repository.alerts`) inside the run's transaction, and turns the rows into
:class:`StoredAlert`, what the run summary shows and `flows.notify` delivers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from db.engine import Session
from db.repository import (
    RunKey,
    add_alert,
    get_open_alert,
    mark_run_failed,
    open_alerts,
    record_drift_metrics,
    resolve_alert,
    run_for,
    touch_alert,
)
from forecasting.monitoring.alerting import Finding, reconcile


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


def format_number(value: float | None) -> str:
    """A metric as people read it: four significant digits, no trailing ``.0``."""
    return "n/a" if value is None else f"{value:.4g}"


def store_findings(
    session: Session,
    key: RunKey,
    findings: list[Finding],
    *,
    model_version_id: int | None,
    move_alerts: bool = True,
) -> list[StoredAlert]:
    """Write the run's drift metrics and apply the alert lifecycle; return the open alerts.

    ``key.run_id``: the run the rows belong to (None: the day's run, created if need be).
    ``move_alerts=False`` (a replay of an old day) stores the metrics only: the alerts describe
    the ticker's present, and a replay must not open, refresh or resolve them."""
    ticker, as_of = key.ticker, key.as_of
    if key.run_id is None:
        key = replace(key, run_id=run_for(session=session, ticker=ticker, as_of_date=as_of))
    record_drift_metrics(
        session=session,
        ticker=ticker,
        rows=[f.to_dict() for f in findings],
        model_version_id=model_version_id,
        **key.stamp(),
    )
    current = {(a.kind, a.metric): a for a in open_alerts(session=session, ticker=ticker)}
    if not move_alerts:
        return [_stored(alert, is_new=False) for alert in current.values()]
    verdict = reconcile(current.keys(), findings)
    new_ids = set()
    for finding in verdict.to_open:
        new_ids.add(_open_alert(session, key, finding).id)
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
    for stale in verdict.to_resolve:
        resolve_alert(session=session, alert=current[stale])
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
    key = RunKey(ticker, as_of, flow_run_id, run.id)
    return _stored(_open_alert(session, key, finding), is_new=True)


def _open_alert(session: Session, key: RunKey, finding: Finding):
    return add_alert(
        session=session,
        ticker=key.ticker,
        kind=finding.kind,
        severity=finding.severity,
        metric=finding.metric,
        message=finding.message,
        value=finding.value,
        threshold=finding.threshold,
        **key.stamp(),
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
