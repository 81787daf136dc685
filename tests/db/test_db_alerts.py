"""Drift metrics (one row per metric per run) and the alert building blocks."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from db.engine import unit_of_work
from db.models import Alert, DriftReport
from db.repository import (
    add_alert,
    get_open_alert,
    list_alerts,
    open_alerts,
    read_drift_metrics,
    record_drift_metrics,
    resolve_alert,
    touch_alert,
)

AS_OF = dt.date(2024, 6, 28)


def _metrics(volatility: float) -> list[dict]:
    return [
        {
            "metric": "volatility_ratio",
            "kind": "data_drift",
            "value": volatility,
            "threshold": 1.75,
            "breached": volatility > 1.75,
        },
        {
            "metric": "stale_sessions",
            "kind": "data_quality",
            "value": 0,
            "threshold": 0,
            "breached": False,
        },
    ]


def _alert(session, metric="volatility_ratio", ticker="NVDA", as_of=AS_OF) -> Alert:
    return add_alert(
        session=session,
        ticker=ticker,
        kind="data_drift",
        severity="warning",
        metric=metric,
        message="returns are more volatile than in training",
        as_of_date=as_of,
        value=2.1,
        threshold=1.75,
        flow_run_id="run-1",
    )


def test_drift_metrics_of_a_rerun_replace_the_first(session, row_count) -> None:
    assert (
        record_drift_metrics(session=session, ticker="NVDA", as_of_date=AS_OF, rows=_metrics(1.2))
        == 2
    )
    record_drift_metrics(
        session=session, ticker="NVDA", as_of_date=AS_OF, rows=_metrics(2.0), flow_run_id="r2"
    )
    record_drift_metrics(
        session=session, ticker="NVDA", as_of_date=AS_OF + dt.timedelta(days=3), rows=_metrics(1.0)
    )
    assert row_count(session, DriftReport) == 4
    frame = read_drift_metrics(session=session, ticker="NVDA", metric="volatility_ratio")
    assert list(frame["value"]) == [2.0, 1.0]
    assert list(frame["breached"]) == [True, False]
    assert frame["flow_run_id"].iloc[0] == "r2"


def test_drift_rows_are_checked(session) -> None:
    with pytest.raises(ValueError, match="drift kind"):
        record_drift_metrics(
            session=session,
            ticker="NVDA",
            as_of_date=AS_OF,
            rows=[{"metric": "x", "kind": "vibes", "value": 1, "breached": False}],
        )
    with pytest.raises(ValueError, match="repeat a metric"):
        record_drift_metrics(
            session=session, ticker="NVDA", as_of_date=AS_OF, rows=_metrics(1.0) * 2
        )


def test_alert_lifecycle(session) -> None:
    alert = _alert(session)
    assert alert.status == "open" and alert.resolved_at is None
    assert alert.last_seen_as_of == AS_OF
    assert (
        get_open_alert(
            session=session, ticker="NVDA", kind="data_drift", metric="volatility_ratio"
        ).id
        == alert.id
    )
    later = AS_OF + dt.timedelta(days=3)
    touch_alert(session=session, alert=alert, as_of_date=later, value=2.4, severity="critical")
    assert (alert.last_seen_as_of, alert.value, alert.severity) == (later, 2.4, "critical")
    assert alert.as_of_date == AS_OF
    resolve_alert(session=session, alert=alert)
    assert alert.status == "resolved" and alert.resolved_at is not None
    assert open_alerts(session=session) == []
    assert [a.id for a in list_alerts(session=session, include_resolved=True)] == [alert.id]
    with pytest.raises(ValueError, match="resolved"):
        touch_alert(session=session, alert=alert, as_of_date=later)


def test_one_open_alert_per_condition(session) -> None:
    first = _alert(session)
    with pytest.raises(ValueError, match="already open"):
        _alert(session)
    other_metric = _alert(session, metric="return_distance")
    other_ticker = _alert(session, ticker="AMD")
    assert {a.id for a in open_alerts(session=session)} == {
        first.id,
        other_metric.id,
        other_ticker.id,
    }
    assert [a.id for a in open_alerts(session=session, ticker="AMD")] == [other_ticker.id]
    resolve_alert(session=session, alert=first)
    reopened = _alert(session, as_of=AS_OF + dt.timedelta(days=5))
    assert reopened.id != first.id
    assert len(list_alerts(session=session, ticker="NVDA", include_resolved=True)) == 3


def test_the_schema_allows_one_open_alert_per_condition(engine) -> None:
    with unit_of_work(engine) as session:
        alert = _alert(session)
        row = {
            column: getattr(alert, column)
            for column in Alert.__table__.columns.keys()  # noqa: SIM118
            if column != "id"
        }
    with pytest.raises(IntegrityError), unit_of_work(engine) as session:
        session.execute(insert(Alert).values(row))


def test_the_schema_keeps_status_and_resolution_consistent(engine) -> None:
    with pytest.raises(IntegrityError), unit_of_work(engine) as session:
        alert = _alert(session)
        alert.status = "resolved"  # without resolved_at
        session.flush()


def test_alert_arguments_are_checked(session) -> None:
    with pytest.raises(ValueError, match="severity"):
        add_alert(
            session=session,
            ticker="NVDA",
            kind="data_drift",
            severity="apocalyptic",
            metric="m",
            message="",
            as_of_date=AS_OF,
        )


def test_the_schema_knows_the_same_alert_kinds_and_severities_as_the_checks() -> None:
    from db.models import ALERT_KINDS, ALERT_SEVERITIES, DRIFT_KINDS
    from forecasting.monitoring.alerting import KINDS, SEVERITIES

    assert ALERT_KINDS == DRIFT_KINDS == KINDS
    assert ALERT_SEVERITIES == SEVERITIES
