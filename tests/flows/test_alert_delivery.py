"""Alerts reach people: Prefect events, a webhook, the failure hook, a degraded download."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from db.engine import get_engine, unit_of_work
from db.models import Alert, Ingestion, Run
from flows.daily import daily_forecast
from flows.settings import get_settings
from forecasting.errors import RateLimitedError
from forecasting.monitoring.alerting import Finding

pytestmark = pytest.mark.slow

AS_OF = dt.date(2004, 12, 31)


class Receiver(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 that records every POSTed JSON body."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/alerts"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture
def receiver(monkeypatch):
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("NVDA_FORECAST_ALERT_WEBHOOK_URL", server.url)
    get_settings.cache_clear()
    yield server
    server.shutdown()
    server.server_close()


def alerts(url: str) -> list[Alert]:
    with unit_of_work(get_engine(url)) as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


def day_runs(url: str) -> list[Run]:
    with unit_of_work(get_engine(url)) as session:
        return list(session.scalars(select(Run).order_by(Run.as_of_date)))


# Two breached checks, injected: the tests below do not depend on what the sample's prices did.
DRIFT = [
    Finding("data_drift", "volatility_ratio", 2.4, 1.75, True, "warning", "volatility x2.4"),
    Finding("performance_drift", "rmse_ratio", 1.9, 1.5, True, "critical", "RMSE x1.9 naive"),
]


def test_the_webhook_gets_one_post_per_new_alert_and_none_for_one_already_open(
    flow_settings, receiver, inject_findings
):
    inject_findings(DRIFT)
    first = daily_forecast(ticker="NVDA", source="sample", as_of=AS_OF)
    new = [alert for alert in first.alerts if alert.is_new]
    assert {("data_drift", "volatility x2.4"), ("performance_drift", "RMSE x1.9 naive")} <= {
        (alert.kind, alert.message) for alert in new
    }
    assert len(receiver.bodies) == len(new)
    posted = {(body["kind"], body["metric"]) for body in receiver.bodies}
    stored = {(a.kind, a.metric) for a in alerts(flow_settings) if a.status == "open"}
    assert posted == stored
    body = receiver.bodies[0]
    assert body["ticker"] == "NVDA" and body["as_of_date"] == AS_OF.isoformat()
    assert body["text"].startswith(f"[{body['severity']}] NVDA {body['kind']}: ")
    assert body["flow_run_id"] == first.flow_run_id

    rerun = daily_forecast(ticker="NVDA", source="sample", as_of=AS_OF)
    assert not any(alert.is_new for alert in rerun.alerts)
    assert len(receiver.bodies) == len(new)
    assert len(alerts(flow_settings)) == len(stored)


def test_each_new_alert_is_a_prefect_event_about_the_ticker(flow_settings, inject_findings):
    from prefect import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

    inject_findings(DRIFT)
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    summary = daily_forecast(ticker="NVDA", source="sample", as_of=AS_OF)
    new = {(a.kind, a.severity, a.message) for a in summary.alerts if a.is_new}
    assert {(f.kind, f.severity, f.message) for f in DRIFT} <= new
    event_filter = EventFilter(
        occurred=EventOccurredFilter(since=started),
        event=EventNameFilter(prefix=["nvda-forecast.alert."]),
    )
    events = []
    deadline = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        # The server persists events in batches: poll until they are all there.
        while time.monotonic() < deadline:
            page = client.read_events(filter=event_filter, limit=50)
            events = [e for e in page.events if e.payload["flow_run_id"] == summary.flow_run_id]
            if len(events) >= len(new):
                break
            time.sleep(0.5)
    # The event feed lists the name (kind and severity) and the resource's name (the message).
    assert {(e.event, e.resource.name) for e in events} == {
        (f"nvda-forecast.alert.{kind}.{severity}", f"NVDA {kind.replace('_', ' ')} {severity}: {m}")
        for kind, severity, m in new
    }
    assert {(e.payload["kind"], e.payload["severity"], e.payload["message"]) for e in events} == new
    for event in events:
        assert event.resource.id == "nvda-forecast.ticker.NVDA"
        assert event.resource["nvda-forecast.severity"] == event.payload["severity"]


def test_a_failed_run_opens_a_critical_alert_and_the_next_good_run_resolves_it(
    flow_settings, receiver, monkeypatch
):
    def broken(*_, **__):
        raise RuntimeError("model store unreachable (injected)")

    with monkeypatch.context() as patch:
        patch.setattr("flows.pipeline.forecast_contenders", broken)
        with pytest.raises(RuntimeError, match="injected"):
            daily_forecast(ticker="NVDA", source="sample", as_of=AS_OF)
    (failed,) = [a for a in alerts(flow_settings) if a.metric == "flow_run_failed"]
    assert (failed.kind, failed.severity, failed.status) == ("pipeline", "critical", "open")
    assert "RuntimeError: model store unreachable (injected)" in failed.message
    assert [b["metric"] for b in receiver.bodies] == ["flow_run_failed"]
    (run,) = day_runs(flow_settings)
    assert (run.as_of_date, run.status, failed.run_id) == (AS_OF, "failed", run.id)
    assert "model store unreachable (injected)" in run.error

    daily_forecast(ticker="NVDA", source="sample", as_of=AS_OF)
    (resolved,) = [a for a in alerts(flow_settings) if a.metric == "flow_run_failed"]
    assert resolved.status == "resolved" and resolved.resolved_at is not None
    (run,) = day_runs(flow_settings)
    assert (run.status, run.error) == ("succeeded", None)


def test_a_webhook_that_fails_in_any_way_leaves_the_stored_run_succeeded(
    flow_settings, inject_findings, monkeypatch, caplog
):
    """Issue 26: a malformed URL raised httpx.InvalidURL (no httpx.HTTPError) after the forecast
    was stored: no summary, exit 1, a failed runs row. Delivery failures are warnings."""
    import httpx

    monkeypatch.setenv("NVDA_FORECAST_ALERT_WEBHOOK_URL", "https://hooks.example.com/T0/SECRET")
    get_settings.cache_clear()

    def invalid(*_, **__):
        raise httpx.InvalidURL("Invalid non-printable ASCII character in URL (injected)")

    monkeypatch.setattr(httpx, "post", invalid)
    inject_findings(DRIFT)
    summary = daily_forecast(ticker="NVDA", source="sample", as_of=AS_OF)

    assert {("data_drift", "volatility x2.4")} <= {(a.kind, a.message) for a in summary.alerts}
    (run,) = day_runs(flow_settings)
    assert (run.as_of_date, run.status, run.error) == (AS_OF, "succeeded", None)
    assert not [a for a in alerts(flow_settings) if a.metric == "flow_run_failed"]
    warned = [r.getMessage() for r in caplog.records if "not delivered" in r.getMessage()]
    assert warned and "SECRET" not in " ".join(warned)


def test_a_rate_limited_download_falls_back_to_stored_bars_and_alerts(flow_settings, monkeypatch):
    daily_forecast(ticker="NVDA", source="sample", as_of=AS_OF)

    def rate_limited(*_, **__):
        raise RateLimitedError("Yahoo rate-limited the request (injected); retry later")

    monkeypatch.setattr("forecasting.prices.sources.SampleSource.fetch", rate_limited)
    monkeypatch.setattr("flows.ingest.download.retry_delay_seconds", [0, 0, 0])
    summary = daily_forecast(ticker="NVDA", source="sample", as_of=dt.date(2005, 1, 7))

    assert summary.as_of == AS_OF  # the newest stored bar
    assert summary.action == "reuse"
    assert ("data_quality", "warning") in {(a.kind, a.severity) for a in summary.alerts}
    with unit_of_work(get_engine(flow_settings)) as session:
        statuses = [i.status for i in session.scalars(select(Ingestion).order_by(Ingestion.id))]
    assert statuses == ["succeeded", "failed"]
    (download,) = [a for a in alerts(flow_settings) if a.metric == "download_failed"]
    assert download.status == "open"
