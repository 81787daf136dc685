"""Drift metrics of each run, and alerts: the building blocks of the alert lifecycle.

An alert is open until a later run finds the condition gone; at most one open alert exists
per (ticker, kind, metric), which the schema enforces with a partial unique index.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import ALERT_KINDS, ALERT_SEVERITIES, DRIFT_KINDS, Alert, DriftReport
from db.repository.bulk import clean_number, upsert_rows
from db.repository.runs import run_for
from db.types import utcnow

_DRIFT_VALUES = ("model_version_id", "kind", "value", "threshold", "breached")


def record_drift_metrics(
    *,
    session: Session,
    ticker: str,
    as_of_date: dt.date,
    rows: Sequence[Mapping[str, Any]],
    model_version_id: int | None = None,
    flow_run_id: str | None = None,
    run_id: int | None = None,
) -> int:
    """Store one row per metric (``metric, kind, value, threshold, breached``); reruns replace.

    A row may name its own ``model_version_id``; otherwise the argument's is used.
    """
    if run_id is None:
        run_id = run_for(session=session, ticker=ticker, as_of_date=as_of_date)
    now = utcnow()
    records = []
    for row in rows:
        kind = row.get("kind")
        if kind not in DRIFT_KINDS:
            raise ValueError(f"drift kind must be one of {DRIFT_KINDS}, not {kind!r} ({row})")
        records.append(
            {
                "run_id": run_id,
                "ticker": ticker,
                "as_of_date": as_of_date,
                "metric": str(row["metric"]),
                "model_version_id": row.get("model_version_id", model_version_id),
                "kind": kind,
                "value": clean_number(row.get("value")),
                "threshold": clean_number(row.get("threshold")),
                "breached": bool(row["breached"]),
                "created_at": now,
                "flow_run_id": flow_run_id,
            }
        )
    metrics = [record["metric"] for record in records]
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"drift metrics of {ticker} on {as_of_date} repeat a metric: {metrics}")
    return upsert_rows(
        session,
        DriftReport.__table__,
        records,
        key=("ticker", "as_of_date", "metric"),
        update=(*_DRIFT_VALUES, "run_id", "created_at", "flow_run_id"),
    )


def read_drift_metrics(
    *, session: Session, ticker: str, metric: str | None = None, since: dt.date | None = None
) -> pd.DataFrame:
    """Drift rows of ``ticker`` (one metric, or all), oldest first."""
    table = DriftReport.__table__
    statement = select(table).where(table.c.ticker == ticker)
    if metric is not None:
        statement = statement.where(table.c.metric == metric)
    if since is not None:
        statement = statement.where(table.c.as_of_date >= since)
    result = session.execute(statement.order_by(table.c.as_of_date, table.c.metric))
    frame = pd.DataFrame.from_records(result.all(), columns=list(result.keys()))
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"]).dt.as_unit("ns")
    frame["breached"] = frame["breached"].astype("bool")
    return frame


def get_open_alert(*, session: Session, ticker: str, kind: str, metric: str) -> Alert | None:
    """The open alert for this condition, if any."""
    statement = select(Alert).where(
        Alert.ticker == ticker, Alert.kind == kind, Alert.metric == metric, Alert.status == "open"
    )
    return session.scalars(statement).one_or_none()


def open_alerts(*, session: Session, ticker: str | None = None) -> list[Alert]:
    """Alerts still open (of one ticker, or all), oldest first."""
    return list_alerts(session=session, ticker=ticker, include_resolved=False)


def list_alerts(
    *, session: Session, ticker: str | None = None, include_resolved: bool = False
) -> list[Alert]:
    """Alerts of one ticker or all, oldest first; resolved ones only when asked."""
    statement = select(Alert)
    if ticker is not None:
        statement = statement.where(Alert.ticker == ticker)
    if not include_resolved:
        statement = statement.where(Alert.status == "open")
    return list(session.scalars(statement.order_by(Alert.opened_at, Alert.id)))


def add_alert(
    *,
    session: Session,
    ticker: str,
    kind: str,
    severity: str,
    metric: str,
    message: str,
    as_of_date: dt.date,
    value: float | None = None,
    threshold: float | None = None,
    flow_run_id: str | None = None,
    run_id: int | None = None,
) -> Alert:
    """Open a new alert (``run_id``: the run that opened it); fails if one is already open for
    (ticker, kind, metric)."""
    _check_kind_and_severity(kind, severity)
    if get_open_alert(session=session, ticker=ticker, kind=kind, metric=metric) is not None:
        raise ValueError(f"an alert for {ticker} {kind}/{metric} is already open; touch it instead")
    now = utcnow()
    alert = Alert(
        ticker=ticker,
        kind=kind,
        severity=severity,
        metric=metric,
        message=message,
        value=clean_number(value),
        threshold=clean_number(threshold),
        status="open",
        as_of_date=as_of_date,
        last_seen_as_of=as_of_date,
        opened_at=now,
        last_seen_at=now,
        flow_run_id=flow_run_id,
        run_id=run_id,
    )
    session.add(alert)
    session.flush()
    return alert


def touch_alert(
    *,
    session: Session,
    alert: Alert,
    as_of_date: dt.date,
    value: float | None = None,
    threshold: float | None = None,
    severity: str | None = None,
    message: str | None = None,
) -> Alert:
    """Record that an open alert's condition was seen again, with its latest value."""
    if alert.status != "open":
        raise ValueError(f"alert {alert.id} is {alert.status}; open a new one instead")
    if severity is not None:
        _check_kind_and_severity(alert.kind, severity)
        alert.severity = severity
    alert.last_seen_as_of = max(alert.last_seen_as_of, as_of_date)
    alert.last_seen_at = utcnow()
    if value is not None:
        alert.value = clean_number(value)
    if threshold is not None:
        alert.threshold = clean_number(threshold)
    if message is not None:
        alert.message = message
    session.flush()
    return alert


def resolve_alert(*, session: Session, alert: Alert) -> Alert:
    """Close an open alert (its condition is gone); resolving twice changes nothing."""
    if alert.status != "resolved":
        alert.status = "resolved"
        alert.resolved_at = utcnow()
        session.flush()
    return alert


def _check_kind_and_severity(kind: str, severity: str) -> None:
    if kind not in ALERT_KINDS:
        raise ValueError(f"alert kind must be one of {ALERT_KINDS}, not {kind!r}")
    if severity not in ALERT_SEVERITIES:
        raise ValueError(f"alert severity must be one of {ALERT_SEVERITIES}, not {severity!r}")
