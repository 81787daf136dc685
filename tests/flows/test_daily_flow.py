"""End to end: the daily flow on the bundled sample, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.engine import get_engine, unit_of_work
from db.models import (
    Alert,
    DriftReport,
    Evaluation,
    Ingestion,
    ModelVersion,
    Prediction,
    Price,
    Run,
)
from flows.daily import daily_forecast
from forecasting.calendar import next_trading_day
from forecasting.errors import TickerNotFoundError
from forecasting.model import file_sha256
from forecasting.monitoring.alerting import Finding

pytestmark = pytest.mark.slow
# The first test and the reruns run on both databases; the others test the pipeline's logic,
# on SQLite.
# The whole pipeline once on each database: the rest of the flow tests run on SQLite only.
both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

FIRST_AS_OF = dt.date(2004, 12, 31)
LATER_AS_OF = dt.date(2005, 1, 7)
TABLES = (Price, ModelVersion, Evaluation, Prediction, Ingestion)


def counts(url: str) -> dict[str, int]:
    with unit_of_work(get_engine(url)) as session:
        return {
            table.__tablename__: session.scalar(select(func.count()).select_from(table))
            for table in TABLES
        }


def predictions(url: str, **where) -> list[Prediction]:
    with unit_of_work(get_engine(url)) as session:
        statement = select(Prediction).filter_by(**where).order_by(Prediction.id)
        rows = session.scalars(statement).all()
        session.expunge_all()
        return rows


@pytest.fixture
def no_drift_alerts(inject_findings):
    """No drift, whatever the sample's prices do: to follow the training policy undisturbed."""
    inject_findings([])


@both_databases
def test_first_run_retrains_rerun_is_idempotent_later_run_fine_tunes(
    flow_settings, no_drift_alerts, tmp_path
):
    first = daily_forecast(ticker="nvda", source="sample", as_of=FIRST_AS_OF)

    assert first.ticker == "NVDA"
    assert first.action == "retrain" and first.promoted is True
    assert first.as_of == FIRST_AS_OF
    assert first.target_date == next_trading_day(FIRST_AS_OF) == dt.date(2005, 1, 3)
    assert first.lower_95 < first.lower_80 < first.predicted_close < first.upper_80 < first.upper_95
    # Fresh: the serving model has learned the as-of date's own session.
    assert (first.train_end, first.staleness) == (FIRST_AS_OF, 0)
    # No walk-forward record yet: the retrain's held-out days decide what is served.
    assert first.basis == "held-out" and first.n_realized > 20
    assert first.served_by in ("lstm", "garch_avg")  # 1,500 returns: GARCH fits, naive stands by
    after_first = counts(flow_settings)
    with unit_of_work(get_engine(flow_settings)) as session:
        (champion,) = session.scalars(select(ModelVersion)).all()
        assert (champion.status, champion.kind, champion.as_of_date, champion.train_end) == (
            "champion",
            "retrain",
            FIRST_AS_OF,
            FIRST_AS_OF,
        )
        assert champion.flow_run_id == first.flow_run_id
        assert Path(champion.artifact_uri).is_file()
        (evaluation,) = session.scalars(select(Evaluation)).all()
        assert evaluation.test_loss == pytest.approx(first.test_loss)
        assert evaluation.n_realized == first.n_realized
        assert evaluation.skill == pytest.approx(first.skill)
        tests = session.scalar(
            select(func.count()).select_from(Prediction).where(Prediction.kind == "test")
        )
        assert tests == evaluation.n_test
        assert session.scalar(select(func.max(Price.date))) == FIRST_AS_OF
    (served,) = predictions(flow_settings, kind="forecast")
    assert (served.as_of_date, served.target_date, served.method) == (
        FIRST_AS_OF,
        dt.date(2005, 1, 3),
        first.served_by,
    )
    contenders = {p.method: p for p in predictions(flow_settings, kind="contender")}
    assert set(contenders) == {"lstm", "naive", "garch", "gjr", "garch_avg"}
    for name in ("naive", "garch", "gjr", "garch_avg"):  # the price-only contenders: zero drift
        assert contenders[name].predicted_close == contenders[name].base_close
    assert contenders["naive"].model_version_id is None
    assert contenders["lstm"].model_version_id == champion.id
    assert contenders["lstm"].scale > 0

    rerun = daily_forecast(ticker="NVDA", source="sample", as_of=FIRST_AS_OF)
    assert rerun.action == "reuse" and rerun.promoted is None
    assert rerun.predicted_close == pytest.approx(first.predicted_close)
    after_rerun = counts(flow_settings)
    # The ingestion log gains one row per fetch; every other table is unchanged.
    assert after_rerun == {**after_first, "ingestions": after_first["ingestions"] + 1}
    with unit_of_work(get_engine(flow_settings)) as session:
        # One run for the day, stamped by its latest attempt, and every row of the day is its.
        (run,) = session.scalars(select(Run)).all()
        assert (run.as_of_date, run.status, run.flow_run_id) == (
            FIRST_AS_OF,
            "succeeded",
            rerun.flow_run_id,
        )
        assert len(run.data_hash) == 64 and run.started_at <= run.finished_at
        for model in (ModelVersion, Evaluation, Prediction, DriftReport):
            assert set(session.scalars(select(model.run_id))) == {run.id}, model

    later = daily_forecast(ticker="NVDA", source="sample", as_of=LATER_AS_OF)
    assert later.action == "finetune"
    assert later.target_date == dt.date(2005, 1, 10)
    assert (later.train_end, later.staleness) == (LATER_AS_OF, 0)
    with unit_of_work(get_engine(flow_settings)) as session:
        versions = session.scalars(select(ModelVersion).order_by(ModelVersion.id)).all()
        assert [v.kind for v in versions] == ["retrain", "finetune"]
        assert versions[1].parent_id == versions[0].id
        assert versions[1].train_end == LATER_AS_OF
        assert session.scalar(select(func.max(Price.date))) == LATER_AS_OF


def test_the_garch_average_serves_when_the_lstm_has_no_record_and_the_user_is_told(
    flow_settings, monkeypatch
):
    from flows.settings import get_settings

    # More realized forecasts demanded than any record holds: the LSTM may not serve.
    monkeypatch.setenv("NVDA_FORECAST_SERVING__MIN_REALIZED", "5000")
    get_settings.cache_clear()
    summary = daily_forecast(ticker="NVDA", source="sample", as_of=FIRST_AS_OF)

    assert summary.served_by == "garch_avg"
    assert summary.predicted_close == summary.base_close  # naive's point
    assert "garch_avg serves" in summary.serving_reason
    (served,) = predictions(flow_settings, kind="forecast")
    assert (served.method, served.model_version_id) == ("garch_avg", None)
    (average,) = predictions(flow_settings, kind="contender", method="garch_avg")
    assert (served.lower_95, served.upper_95) == (average.lower_95, average.upper_95)
    lstm = predictions(flow_settings, kind="contender", method="lstm")
    assert [p.predicted_close for p in lstm] == [pytest.approx(summary.lstm_close)]
    warning = [
        a
        for a in summary.alerts
        if a.kind == "pipeline" and "The GARCH average serves" in a.message
    ]
    assert warning and warning[0].is_new and warning[0].severity == "warning"


def test_naive_serves_while_the_history_is_too_short_for_garch(flow_settings, monkeypatch):
    from flows.settings import get_settings

    monkeypatch.setenv("NVDA_FORECAST_SERVING__MIN_REALIZED", "5000")
    # 1,500 returns up to 2004-12-31: a 5,000-return GARCH window cannot be fitted.
    monkeypatch.setenv("NVDA_FORECAST_SERVING__GARCH_WINDOW", "5000")
    get_settings.cache_clear()
    summary = daily_forecast(ticker="NVDA", source="sample", as_of=FIRST_AS_OF)

    assert summary.served_by == "naive"
    assert "naive serves" in summary.serving_reason
    (served,) = predictions(flow_settings, kind="forecast")
    assert (served.method, served.model_version_id) == ("naive", None)
    contenders = {p.method for p in predictions(flow_settings, kind="contender")}
    assert contenders == {"lstm", "naive"}
    warning = [a for a in summary.alerts if a.kind == "pipeline" and "Naive serves" in a.message]
    assert warning and warning[0].is_new and warning[0].severity == "warning"


def test_a_broken_champion_is_retired_and_a_retrain_recovers(flow_settings, no_drift_alerts):
    daily_forecast(ticker="NVDA", source="sample", as_of=FIRST_AS_OF)
    with unit_of_work(get_engine(flow_settings)) as session:
        (champion,) = session.scalars(select(ModelVersion)).all()
        path = Path(champion.artifact_uri)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    recovered = daily_forecast(ticker="NVDA", source="sample", as_of=LATER_AS_OF, mode="retrain")

    assert recovered.action == "retrain" and recovered.promoted is True
    with unit_of_work(get_engine(flow_settings)) as session:
        statuses = [v.status for v in session.scalars(select(ModelVersion).order_by("id"))]
        assert statuses == ["retired", "champion"]
        alert = session.scalars(
            select(Alert).where(Alert.metric == "champion_unusable", Alert.status == "open")
        ).one()
        assert alert.severity == "critical" and "sha256" in alert.message
    # The next good run finds a sound champion and resolves the alert.
    again = daily_forecast(ticker="NVDA", source="sample", as_of=dt.date(2005, 1, 10))
    assert again.action == "finetune"
    assert not [a for a in again.alerts if "retired" in a.message]


def test_reruns_keep_one_forecast_a_day_and_no_orphaned_model_files(
    flow_settings, no_drift_alerts, tmp_path
):
    daily_forecast(ticker="NVDA", source="sample", as_of=FIRST_AS_OF)
    daily_forecast(ticker="NVDA", source="sample", as_of=LATER_AS_OF, mode="retrain")
    daily_forecast(ticker="NVDA", source="sample", as_of=LATER_AS_OF, mode="finetune")
    daily_forecast(ticker="NVDA", source="sample", as_of=LATER_AS_OF, mode="finetune")

    served = predictions(flow_settings, kind="forecast")
    assert [p.as_of_date for p in served] == [FIRST_AS_OF, LATER_AS_OF]
    contenders = predictions(flow_settings, kind="contender", as_of_date=LATER_AS_OF)
    assert sorted(p.method for p in contenders) == ["garch", "garch_avg", "gjr", "lstm", "naive"]
    with unit_of_work(get_engine(flow_settings)) as session:
        versions = session.scalars(select(ModelVersion).order_by(ModelVersion.id)).all()
        referenced = {Path(v.artifact_uri) for v in versions if v.artifact_uri}
        runs = session.scalars(select(Run).order_by(Run.as_of_date)).all()
    on_disk = set((tmp_path / "artifacts").rglob("*.keras"))
    assert on_disk == referenced
    # One run a day, every version under its day's run. Of the later day's reruns only the last
    # attempt's version is left, and the earlier versions it descends from (the second
    # fine-tune started from the first, the champion by then): a lineage, nothing orphaned.
    assert [run.as_of_date for run in runs] == [FIRST_AS_OF, LATER_AS_OF]
    assert [v.run_id for v in versions] == [runs[0].id] + [runs[1].id] * (len(versions) - 1)
    assert versions[-1].status == "champion" and versions[-1].kind == "finetune"
    parents = {v.parent_id for v in versions}
    assert all(v.id in parents for v in versions[1:-1])


def test_a_failure_inside_persist_leaves_the_database_unchanged(
    flow_settings, monkeypatch, tmp_path
):
    daily_forecast(ticker="NVDA", source="sample", as_of=FIRST_AS_OF)
    before = counts(flow_settings)
    artifacts = sorted((tmp_path / "artifacts").rglob("*.keras"))

    def broken(**_):
        raise RuntimeError("disk full (injected)")

    monkeypatch.setattr("flows.persist.replace_predictions", broken)
    with pytest.raises(RuntimeError, match="injected"):
        daily_forecast(ticker="NVDA", source="sample", as_of=LATER_AS_OF, mode="retrain")

    after = counts(flow_settings)
    # Prices and the ingestion log belong to the ingest step, committed before persist.
    persisted = ("model_versions", "evaluations", "predictions")
    assert {name: after[name] for name in persisted} == {name: before[name] for name in persisted}
    # The failed run's candidate file is removed: nothing half written is left behind.
    assert sorted((tmp_path / "artifacts").rglob("*.keras")) == artifacts


def test_a_retried_persist_never_commits_a_row_pointing_at_a_removed_file(
    flow_settings, monkeypatch, tmp_path
):
    from db.errors import DatabaseUnavailableError
    from flows import persist

    real, calls = persist.replace_predictions, []

    def busy_once(**kwargs):
        calls.append(kwargs["kind"])
        if len(calls) == 1:  # the first attempt's transaction fails, as a busy database would
            raise DatabaseUnavailableError("database is locked (injected)")
        return real(**kwargs)

    monkeypatch.setattr(persist, "replace_predictions", busy_once)
    monkeypatch.setattr(persist.persist_run, "retry_delay_seconds", [0])
    summary = daily_forecast(ticker="NVDA", source="sample", as_of=FIRST_AS_OF)

    assert calls.count("test") == 2  # the transaction ran twice: a retry, not a pass-through
    with unit_of_work(get_engine(flow_settings)) as session:
        version = session.get(ModelVersion, summary.candidate_version_id)
        uri, sha256 = version.artifact_uri, version.sha256
    # The committed row's file exists and is the model it records; no other file is left.
    assert file_sha256(Path(uri)) == sha256
    assert list((tmp_path / "artifacts").rglob("*.keras")) == [Path(uri)]


def test_unknown_ticker_fails_with_one_line_and_records_the_failed_download(flow_settings):
    with pytest.raises(TickerNotFoundError) as raised:
        daily_forecast(ticker="AMD", source="sample")
    assert "\n" not in str(raised.value)
    with unit_of_work(get_engine(flow_settings)) as session:
        (ingestion,) = session.scalars(select(Ingestion)).all()
        assert ingestion.status == "failed"
        assert ingestion.error == str(raised.value)


def test_an_open_drift_alert_makes_the_next_run_retrain_once(flow_settings, inject_findings):
    inject_findings([])
    first = daily_forecast(ticker="NVDA", source="sample", as_of=FIRST_AS_OF)
    assert not [a for a in first.alerts if a.kind in ("data_drift", "performance_drift")]
    # From here on the checks find the inputs drifted (injected: not the sample's own moves).
    inject_findings(
        [Finding("data_drift", "ks_p_value", 1e-4, 0.01, True, "warning", "returns moved")]
    )
    fine_tuned = daily_forecast(ticker="NVDA", source="sample", as_of=LATER_AS_OF)
    assert fine_tuned.action == "finetune"
    assert "data_drift" in {alert.kind for alert in fine_tuned.alerts if alert.is_new}

    drift_retrain = daily_forecast(ticker="NVDA", source="sample", as_of=dt.date(2005, 1, 14))
    assert drift_retrain.action == "retrain"
    assert drift_retrain.reason.startswith("drift alert open: data_drift")

    # The alert may stay open, but the retrain answered it: no retrain every day.
    after = daily_forecast(ticker="NVDA", source="sample", as_of=dt.date(2005, 1, 21))
    assert after.action == "finetune"


def test_a_live_run_is_named_by_its_ticker_and_the_as_of_day_its_data_gave(flow_settings):
    from prefect import get_client

    summary = daily_forecast(ticker="nvda", source="sample")
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(summary.flow_run_id)
    # Not "NVDA-sample": the day the run forecast from, learnt from the data.
    assert run.name == f"NVDA {summary.as_of.isoformat()}"
