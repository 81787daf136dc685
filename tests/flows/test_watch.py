"""The alert lifecycle in the store: open, dedupe, keep inside the band, resolve, reopen."""

from __future__ import annotations

import datetime as dt
import logging
import math

import pytest
from sqlalchemy import func, select

from db.engine import get_engine, unit_of_work
from db.migrate import ensure_schema
from db.models import Alert, DriftReport
from db.repository import RunKey
from flows.alerts import store_findings
from forecasting.monitoring.alerting import Finding

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
        key = RunKey("NVDA", day, f"run-{day}")
        return store_findings(session, key, list(findings), model_version_id=None)


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


SECRET_URL = "https://hooks.example.com:8443/services/T000/B000/SECRETTOKEN?sig=SECRETSIG"


def test_a_webhook_url_is_shown_without_its_path_and_query():
    from flows.webhook_url import mask_url, mask_urls

    assert mask_url(SECRET_URL) == "https://hooks.example.com:8443/***"
    assert mask_url("http://127.0.0.1:9000") == "http://127.0.0.1:9000"
    assert mask_url("not a url") == "***"
    text = f"Client error '404 Not Found' for url '{SECRET_URL}'\nsee https://x.io/docs/404"
    masked = mask_urls(text)
    assert "SECRET" not in masked and "https://hooks.example.com:8443/***'" in masked


def _alert(value: float | None, threshold: float | None, flow_run_id: str | None = "run-1"):
    from flows.alerts import StoredAlert

    return StoredAlert(
        7, "NVDA", "data_drift", "warning", "returns_psi", value, threshold, "m", DAY[0],
        flow_run_id, True,
    )  # fmt: skip


def test_notifications_show_readable_numbers_and_the_event_names_its_flow_run():
    from flows.notify import alert_event

    event = alert_event(_alert(1.8073711174054015, 449.0))
    assert (event["payload"]["value_text"], event["payload"]["threshold_text"]) == ("1.807", "449")
    assert event["payload"]["value"] == 1.8073711174054015  # machines still get the number
    assert event["related"] == [
        {"prefect.resource.id": "prefect.flow-run.run-1", "prefect.resource.role": "flow-run"}
    ]
    assert "related" not in alert_event(_alert(None, None, flow_run_id=None))
    assert alert_event(_alert(None, None))["payload"]["value_text"] == "n/a"


def test_a_webhook_error_is_logged_without_the_token(caplog):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from flows.notify import post_webhook

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(403)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        post_webhook(f"http://127.0.0.1:{port}/T000/SECRETTOKEN?k=SECRETKEY", _alert(1.0, 2.0))
        post_webhook("http://127.0.0.1:1/T000/SECRETTOKEN?k=SECRETKEY", _alert(1.0, 2.0))
    finally:
        server.shutdown()
        server.server_close()
    logged = [record.getMessage() for record in caplog.records]
    assert len(logged) == 2 and "SECRET" not in " ".join(logged)
    assert (
        logged[0]
        == f"alert 7 not delivered to the webhook http://127.0.0.1:{port}/***: HTTP 403 Forbidden"
    )
    assert logged[1].startswith("alert 7 not delivered to the webhook http://127.0.0.1:1/***: ")


def _new_alert(kind="data_drift", severity="warning", message="volatility x2.4", alert_id=7):
    from flows.alerts import StoredAlert

    return StoredAlert(
        alert_id, "NVDA", kind, severity, "volatility_ratio", 2.4, 1.75, message, DAY[0],
        "run-1", True,
    )  # fmt: skip


def test_the_event_feed_shows_the_severity_and_the_message_not_only_raw():
    """The Prefect UI's feed lists the event's name (as its title: `prefect.` dropped, each of
    `. _ -` a space) and the resource's `prefect.resource.name`; the payload is only in Raw."""
    from flows.notify import alert_event

    event = alert_event(_new_alert(message="returns are 2.40x as volatile as the reference"))
    assert event["event"] == "nvda-forecast.alert.data_drift.warning"
    resource = event["resource"]
    assert resource["prefect.resource.name"] == (
        "NVDA data drift warning: returns are 2.40x as volatile as the reference"
    )
    # What automations match on stays: the ticker's resource id and the severity label.
    assert resource["prefect.resource.id"] == "nvda-forecast.ticker.NVDA"
    assert resource["nvda-forecast.severity"] == "warning"
    assert resource["nvda-forecast.ticker"] == "NVDA"
    assert resource["nvda-forecast.kind"] == "data_drift"
    assert resource["nvda-forecast.metric"] == "volatility_ratio"
    critical = alert_event(_new_alert("pipeline", "critical", "RuntimeError: disk full"))
    assert critical["event"] == "nvda-forecast.alert.pipeline.critical"
    assert critical["resource"]["prefect.resource.name"] == (
        "NVDA pipeline critical: RuntimeError: disk full"
    )


def test_a_long_message_is_cut_in_the_resource_name_and_whole_in_the_payload():
    from flows.notify import alert_event

    message = "x" * 1000
    event = alert_event(_new_alert(message=message))
    name = event["resource"]["prefect.resource.name"]
    assert len(name) <= 200 and name.endswith("...")
    assert event["payload"]["message"] == message


@pytest.fixture
def events(monkeypatch):
    """The events flows.notify emits, recorded instead of sent."""
    emitted: list[dict] = []
    monkeypatch.setattr("flows.notify.emit_event", lambda **event: emitted.append(event))
    return emitted


@pytest.mark.parametrize(
    "url",
    [
        # A port typo: masking httpx's error raised "ValueError: Port out of range 0-65535".
        "http://127.0.0.1:99999/T000/SECRETTOKEN?k=SECRETKEY",
        # A stray newline: httpx.InvalidURL, which is no httpx.HTTPError.
        "http://127.0.0.1:1/T000/SECRETTOKEN\n",
        "http://127.0.0.1:8o43/T000/SECRETTOKEN",
    ],
)
def test_a_malformed_webhook_url_is_a_warning_not_a_failed_run(events, caplog, url):
    from flows.notify import deliver

    failures = deliver(_new_alert(), webhook_url=url, notification_block="")
    assert failures == 1
    assert len(events) == 1  # the event still went out
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(logged) == 1 and "SECRET" not in logged[0]
    assert logged[0].startswith("alert 7 not delivered to the webhook http://127.0.0.1:")


def test_no_failure_of_any_channel_fails_the_delivery_of_the_others(monkeypatch, caplog):
    from flows import notify

    def broken_event(**_):
        raise RuntimeError("events client gone (injected)")

    def broken_webhook(url, alert):
        raise ValueError("Port out of range 0-65535 (injected)")

    notified = []
    monkeypatch.setattr(notify, "emit_event", broken_event)
    monkeypatch.setattr(notify, "post_webhook", broken_webhook)
    monkeypatch.setattr(notify, "notify_block", lambda name, alert: notified.append(alert.id))
    alerts = [_new_alert(alert_id=1), _new_alert(alert_id=2), _kept(3)]
    delivered = notify.deliver_alerts.fn(
        alerts, webhook_url="https://hooks.example.com/T/SECRETTOKEN", notification_block="a/b"
    )
    assert (delivered.new, delivered.failures) == (2, 4)
    assert notified == [1, 2]  # the block still got both
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    event_failure = "alert 1 not emitted as a Prefect event: RuntimeError: events client gone"
    assert f"{event_failure} (injected)" in warnings
    assert (
        "alert 2 not delivered to the webhook https://hooks.example.com/***: ValueError: Port out "
        "of range 0-65535 (injected)" in warnings
    )
    assert warnings[-1] == "2 new alerts, 4 deliveries failed (the alerts are stored)"
    assert "SECRET" not in " ".join(warnings)


def _kept(alert_id: int):
    from dataclasses import replace

    return replace(_new_alert(alert_id=alert_id), is_new=False)


def test_the_failure_hook_survives_settings_it_cannot_read(monkeypatch, caplog):
    """A flow that failed on an invalid setting must not fail its failure hook with a traceback."""
    from flows.failures import report_failed_run
    from flows.settings import get_settings

    monkeypatch.setenv("NVDA_FORECAST_ALERT_WEBHOOK_URL", "http://127.0.0.1:99999/SECRETTOKEN")
    get_settings.cache_clear()
    error = RuntimeError("injected")
    assert report_failed_run(ticker="NVDA", as_of=DAY[0], error=error, flow_run_id=None) is None
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert line.startswith("could not record the failed run of NVDA: setting NVDA_FORECAST_ALERT")
    assert "SECRET" not in line


def test_a_run_that_fails_after_storing_its_day_is_recorded_on_that_day_not_today(
    database_url, events
):
    """Issue 26: a run without --as-of that failed after it stored its forecast (at delivery)
    left a failed runs row dated today, beside its own succeeded day, for good."""
    from db.models import Run
    from db.repository import start_run
    from flows.failures import report_failed_run

    engine = get_engine(database_url)
    ensure_schema(engine)
    stored_day = dt.date(2004, 12, 31)
    with unit_of_work(engine) as session:
        start_run(
            session=session,
            ticker="NVDA",
            as_of_date=stored_day,
            started_at=dt.datetime.now(dt.UTC),
            flow_run_id="flow-run-1",
        )
    alert = report_failed_run(
        ticker="NVDA",
        as_of=None,
        error=RuntimeError("report not published (injected)"),
        flow_run_id="flow-run-1",
        database_url=database_url,
    )
    assert alert is not None and alert.as_of_date == stored_day
    with unit_of_work(engine) as session:
        runs = [(r.as_of_date, r.status) for r in session.scalars(select(Run))]
    assert runs == [(stored_day, "succeeded")]  # its rows are still the day's
    assert [event["event"] for event in events] == ["nvda-forecast.alert.pipeline.critical"]
