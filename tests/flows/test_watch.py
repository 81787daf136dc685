"""The alert lifecycle in the store: open, dedupe, keep inside the band, resolve, reopen."""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy import func, select

from db.engine import get_engine, unit_of_work
from db.migrate import ensure_schema
from db.models import Alert, DriftReport
from flows.watch import store_findings
from forecasting.alerting import Finding

DAY = [dt.date(2024, 3, day) for day in (4, 5, 6, 7, 8)]


def volatility(value: float, *, breached: bool, clear: bool | None = None) -> Finding:
    return Finding(
        "data_drift",
        "volatility_ratio",
        value,
        1.75,
        breached,
        "warning" if breached else "info",
        f"returns are {value:.2f}x as volatile as the reference (threshold 1.75x)",
        clear,
    )


UNJUDGED = Finding("performance_drift", "realized_skill", math.nan, 1.2, False, "info", "n/a")


def run(engine, day: dt.date, *findings: Finding):
    with unit_of_work(engine) as session:
        return store_findings(
            session,
            ticker="NVDA",
            as_of=day,
            findings=list(findings),
            model_version_id=None,
            flow_run_id=f"run-{day}",
        )


def test_lifecycle_open_dedupe_keep_resolve_reopen(database_url):
    engine = get_engine(database_url)
    ensure_schema(engine)

    (opened,) = run(engine, DAY[0], volatility(2.1, breached=True), UNJUDGED)
    assert opened.is_new and opened.kind == "data_drift" and opened.value == 2.1

    (kept,) = run(engine, DAY[1], volatility(2.4, breached=True), UNJUDGED)
    assert not kept.is_new and kept.id == opened.id and kept.value == 2.4

    # Below the threshold but inside the resolve band: still the same open alert.
    (band,) = run(engine, DAY[2], volatility(1.6, breached=False, clear=False))
    assert band.id == opened.id

    assert run(engine, DAY[3], volatility(1.1, breached=False)) == []

    (reopened,) = run(engine, DAY[4], volatility(2.0, breached=True))
    assert reopened.is_new and reopened.id != opened.id

    with unit_of_work(engine) as session:
        rows = session.scalars(select(Alert).order_by(Alert.id)).all()
        assert [(a.status, a.as_of_date, a.last_seen_as_of) for a in rows] == [
            ("resolved", DAY[0], DAY[2]),
            ("open", DAY[4], DAY[4]),
        ]
        assert rows[0].resolved_at is not None and rows[0].value == 1.6
        # Every metric of every run is stored, judged or not; NaN becomes NULL.
        assert session.scalar(select(func.count()).select_from(DriftReport)) == 7
        skill = session.scalars(
            select(DriftReport).where(DriftReport.metric == "realized_skill")
        ).all()
        assert [r.value for r in skill] == [None, None]


def test_a_rerun_of_the_same_day_replaces_its_metrics_and_keeps_one_alert(database_url):
    engine = get_engine(database_url)
    ensure_schema(engine)
    run(engine, DAY[0], volatility(2.1, breached=True))
    (again,) = run(engine, DAY[0], volatility(2.2, breached=True))
    assert not again.is_new
    with unit_of_work(engine) as session:
        assert session.scalar(select(func.count()).select_from(Alert)) == 1
        (report,) = session.scalars(select(DriftReport)).all()
        assert report.value == 2.2 and report.flow_run_id == f"run-{DAY[0]}"
