"""`backfill`: the daily pipeline for every session of a range, in one flow run.

A backfilled day writes what the daily run writes; a rerun skips what is stored (idempotent) and
continues after an interruption (resumable); a bad day stops with one line naming it.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from db.engine import dispose_engines, get_engine, unit_of_work
from db.models import ModelVersion, Prediction
from flows.backfill import BackfillError, backfill
from flows.daily import daily_forecast
from forecasting.errors import EmptyDataError, NvdaForecastError

# SQLite only: the rows a day writes are the daily flow's, whose PostgreSQL run is
# tests/flows/test_daily_flow.py's first test; here the backfill's own logic is under test.
pytestmark = pytest.mark.slow

START, END = dt.date(2005, 1, 3), dt.date(2005, 1, 14)  # 10 NYSE sessions


def served(url: str) -> dict[dt.date, float]:
    with unit_of_work(get_engine(url)) as session:
        rows = session.scalars(select(Prediction).where(Prediction.kind == "forecast")).all()
        return {row.as_of_date: row.predicted_close for row in rows}


def rows(url: str) -> dict[str, int]:
    with unit_of_work(get_engine(url)) as session:
        return {
            "predictions": session.scalar(select(func.count()).select_from(Prediction)),
            "model_versions": session.scalar(select(func.count()).select_from(ModelVersion)),
        }


def test_backfill_runs_every_session_once_and_a_rerun_changes_nothing(flow_settings):
    summary = backfill(ticker="nvda", source="sample", start=START, end=END)

    assert (summary.ticker, summary.sessions, summary.ran, summary.skipped) == ("NVDA", 10, 10, 0)
    assert summary.actions == {"retrain": 1, "finetune": 9}
    assert sum(summary.served_by.values()) == 10
    assert {"train", "evaluate", "persist"} <= set(summary.step_seconds)
    forecasts = served(flow_settings)
    assert sorted(forecasts) == [
        START + dt.timedelta(days=d) for d in (0, 1, 2, 3, 4, 7, 8, 9, 10, 11)
    ]
    before = rows(flow_settings)
    with unit_of_work(get_engine(flow_settings)) as session:
        contenders = session.execute(
            select(Prediction.method, func.count())
            .where(Prediction.kind == "contender")
            .group_by(Prediction.method)
        ).all()
        # Every contender's own forecast, every session: the LSTM, naive and the GARCH family.
        assert dict(contenders) == {m: 10 for m in ("lstm", "naive", "garch", "gjr", "garch_avg")}
        versions = session.scalars(select(ModelVersion).order_by(ModelVersion.id)).all()
        # Every session's model is fitted through that session: staleness 0 all along.
        assert [v.train_end for v in versions] == sorted(forecasts)

    again = backfill(ticker="NVDA", source="sample", start=START, end=END)
    assert (again.ran, again.skipped) == (0, 10)
    assert rows(flow_settings) == before and served(flow_settings) == forecasts


def test_a_backfilled_day_is_the_day_a_daily_run_would_have_stored(
    flow_settings, monkeypatch, tmp_path
):
    from flows.settings import get_settings

    backfill(ticker="NVDA", source="sample", start=START, end=dt.date(2005, 1, 5))
    backfilled = served(flow_settings)

    # The same days run one by one, as separate daily runs would.
    daily_url = f"sqlite:///{tmp_path / 'daily.db'}"
    monkeypatch.setenv("DATABASE_URL", daily_url)
    monkeypatch.setenv("NVDA_FORECAST_ARTIFACT_ROOT", str(tmp_path / "daily-artifacts"))
    get_settings.cache_clear()
    for day in sorted(backfilled):
        daily_forecast(ticker="NVDA", source="sample", as_of=day)
    live = served(daily_url)
    dispose_engines()

    assert sorted(live) == sorted(backfilled)
    for day, close in backfilled.items():
        assert live[day] == pytest.approx(close, rel=1e-9), day


def test_a_bad_day_stops_the_backfill_and_a_rerun_continues(flow_settings, monkeypatch):
    import flows.ticker

    real = flows.ticker.forecast_day
    bad_day = dt.date(2005, 1, 6)

    def failing(job, *args, **kwargs):
        if job.as_of == bad_day:
            raise NvdaForecastError("injected: the file has a gap")
        return real(job, *args, **kwargs)

    monkeypatch.setattr(flows.ticker, "forecast_day", failing)
    with pytest.raises(BackfillError) as raised:
        backfill(ticker="NVDA", source="sample", start=START, end=END)
    message = str(raised.value)
    assert "\n" not in message
    assert "stopped at 2005-01-06: injected: the file has a gap" in message
    assert "the 3 sessions before it are stored" in message
    assert sorted(served(flow_settings)) == [START, dt.date(2005, 1, 4), dt.date(2005, 1, 5)]

    monkeypatch.setattr(flows.ticker, "forecast_day", real)
    resumed = backfill(ticker="NVDA", source="sample", start=START, end=END)
    assert (resumed.ran, resumed.skipped) == (7, 3)
    assert len(served(flow_settings)) == 10


def test_a_range_without_sessions_is_one_clear_line(flow_settings):
    with pytest.raises(EmptyDataError, match="has no NVDA rows from 2030-01-02 to 2030-01-09"):
        backfill(ticker="NVDA", source="sample", start=dt.date(2030, 1, 2), end=dt.date(2030, 1, 9))
    with pytest.raises(BackfillError, match="--from <= --to"):
        backfill(ticker="NVDA", source="sample", start=END, end=START)


def test_a_backfill_that_waited_for_the_slot_reads_what_the_other_run_stored(
    flow_settings, monkeypatch
):
    """Two identical backfills, the second waiting for the first's slot: it runs nothing."""
    from contextlib import contextmanager

    import flows.concurrency
    from flows.backfill import range_job
    from flows.pipeline import forecast_day
    from flows.sessions import backfill_range
    from flows.settings import get_settings

    end = dt.date(2005, 1, 5)
    first: list = []

    @contextmanager
    def slot_taken_meanwhile(ticker, **_):
        # While this run waits for the slot, another identical backfill stores every session.
        job = range_job(ticker, "sample", flow_settings, START, end, slot_held=True)
        first.append(backfill_range(job, get_settings(), None, forecast_day)[0])
        yield

    monkeypatch.setattr(flows.concurrency, "ticker_guard", slot_taken_meanwhile)
    second = backfill(ticker="NVDA", source="sample", start=START, end=end)

    assert first[0].ran == 3
    assert (second.ran, second.skipped) == (0, 3)


def test_a_backfill_shows_its_session_count_what_it_forecast_how_it_scored_and_alerts(
    flow_settings, monkeypatch, inject_findings
):
    import flows.progress
    import flows.report.artifacts as report
    import flows.sessions
    from forecasting.monitoring.alerting import Finding

    training_cards: list[str | None] = []
    monkeypatch.setattr(
        flows.progress,
        "create_progress_artifact",
        lambda value, key=None, description=None: training_cards.append(key) or "id",
    )
    progress: list[tuple[float, str | None]] = []
    markdown: list[tuple[str, dict]] = []
    monkeypatch.setattr(
        flows.sessions,
        "create_progress_artifact",
        lambda value, key=None, description=None: progress.append((value, description)) or "id",
    )
    monkeypatch.setattr(
        flows.sessions,
        "update_progress_artifact",
        lambda _, value, description=None: progress.append((value, description)),
    )
    monkeypatch.setattr(
        report, "create_markdown_artifact", lambda text, **options: markdown.append((text, options))
    )
    inject_findings(
        [Finding("data_drift", "ks_p_value", 1e-4, 0.01, True, "warning", "returns moved")]
    )
    end = dt.date(2005, 1, 5)
    summary = backfill(ticker="NVDA", source="sample", start=START, end=end)

    # One progress artifact, naming the session it is on and the count; the fits make none.
    assert training_cards == []
    descriptions = [description for _, description in progress if description]
    assert "NVDA backfill: session 2 of 3 (2005-01-04)" in descriptions
    # A summary of what was forecast and how it scored, with a chart, not only timings.
    ((text, _options),) = [m for m in markdown if m[1]["key"] == "nvda-backfill-summary"]
    assert "![NVDA forecast vs realized](data:image/png;base64," in text
    assert "| 2005-01-03 | 2005-01-04 | $" in text
    assert "realized: RMSE $" in text
    assert "returns moved" in text
    # The terminal summary names the alerts the range opened.
    (drift,) = [line for line in summary.alerts_opened if "returns moved" in line]
    assert drift.startswith("2005-01-03 warning data_drift: ")
    text = summary.to_text()
    assert f"alerts opened during the range: {len(summary.alerts_opened)}" in text
    assert drift in text
    assert summary.realized == 2 and "2 realized: RMSE $" in summary.to_text()
