"""End to end: the daily flow on the bundled sample, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.engine import get_engine, unit_of_work
from db.models import Evaluation, Ingestion, ModelVersion, Prediction, Price
from flows.daily import daily_forecast
from forecasting.calendar import next_trading_day
from forecasting.errors import TickerNotFoundError

pytestmark = pytest.mark.slow

FIRST_AS_OF = dt.date(2004, 12, 31)
LATER_AS_OF = dt.date(2005, 1, 7)
TABLES = (Price, ModelVersion, Evaluation, Prediction, Ingestion)


def counts(url: str) -> dict[str, int]:
    with unit_of_work(get_engine(url)) as session:
        return {
            table.__tablename__: session.scalar(select(func.count()).select_from(table))
            for table in TABLES
        }


@pytest.fixture
def no_drift_alerts(monkeypatch):
    """Thresholds no market can breach, to follow the training policy without drift alerts."""
    from forecasting.config import get_settings

    for name, value in {
        "KS_P_VALUE": "1e-300",
        "DISTANCE_THRESHOLD": "1e9",
        "PSI_THRESHOLD": "1e9",
        "VOLATILITY_RATIO": "1e9",
    }.items():
        monkeypatch.setenv(f"NVDA_FORECAST_DRIFT__{name}", value)
    get_settings.cache_clear()


def test_first_run_retrains_rerun_is_idempotent_later_run_fine_tunes(
    flow_settings, no_drift_alerts, tmp_path
):
    first = daily_forecast(ticker="NVDA", source="sample", as_of=FIRST_AS_OF)

    assert first.action == "retrain" and first.promoted is True
    assert first.as_of == FIRST_AS_OF
    assert first.target_date == next_trading_day(FIRST_AS_OF) == dt.date(2005, 1, 3)
    assert first.lower_95 < first.lower_80 < first.predicted_close < first.upper_80 < first.upper_95
    after_first = counts(flow_settings)
    with unit_of_work(get_engine(flow_settings)) as session:
        (champion,) = session.scalars(select(ModelVersion)).all()
        assert (champion.status, champion.kind, champion.as_of_date) == (
            "champion",
            "retrain",
            FIRST_AS_OF,
        )
        assert champion.flow_run_id == first.flow_run_id
        assert Path(champion.artifact_uri).is_file()
        (evaluation,) = session.scalars(select(Evaluation)).all()
        assert evaluation.test_loss > 0 and evaluation.n_test > 0
        forecasts = session.scalars(select(Prediction).where(Prediction.kind == "forecast")).all()
        assert [(p.as_of_date, p.target_date) for p in forecasts] == [
            (FIRST_AS_OF, dt.date(2005, 1, 3))
        ]
        tests = session.scalar(
            select(func.count()).select_from(Prediction).where(Prediction.kind == "test")
        )
        assert tests == evaluation.n_test
        last_price = session.scalar(select(func.max(Price.date)))
        assert last_price == FIRST_AS_OF

    rerun = daily_forecast(ticker="NVDA", source="sample", as_of=FIRST_AS_OF)
    assert rerun.action == "reuse" and rerun.promoted is None
    assert rerun.predicted_close == pytest.approx(first.predicted_close)
    after_rerun = counts(flow_settings)
    # The ingestion log gains one row per fetch; every other table is unchanged.
    assert after_rerun == {**after_first, "ingestions": after_first["ingestions"] + 1}

    later = daily_forecast(ticker="NVDA", source="sample", as_of=LATER_AS_OF)
    assert later.action == "finetune"
    assert later.target_date == dt.date(2005, 1, 10)
    with unit_of_work(get_engine(flow_settings)) as session:
        versions = session.scalars(select(ModelVersion).order_by(ModelVersion.id)).all()
        assert [v.kind for v in versions] == ["retrain", "finetune"]
        assert versions[1].parent_id == versions[0].id
        assert session.scalar(select(func.max(Price.date))) == LATER_AS_OF


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


def test_unknown_ticker_fails_with_one_line_and_records_the_failed_download(flow_settings):
    with pytest.raises(TickerNotFoundError) as raised:
        daily_forecast(ticker="AMD", source="sample")
    assert "\n" not in str(raised.value)
    with unit_of_work(get_engine(flow_settings)) as session:
        (ingestion,) = session.scalars(select(Ingestion)).all()
        assert ingestion.status == "failed"
        assert ingestion.error == str(raised.value)


def test_an_open_drift_alert_makes_the_next_run_retrain_once(
    flow_settings, no_drift_alerts, monkeypatch
):
    from forecasting.config import get_settings

    assert daily_forecast(ticker="NVDA", source="sample", as_of=FIRST_AS_OF).alerts == ()
    # Back to the default thresholds: early January 2005 returns differ from the reference
    # sessions before them (KS test, PSI), and the fine-tune run opens a data drift alert.
    for name in ("KS_P_VALUE", "DISTANCE_THRESHOLD", "PSI_THRESHOLD", "VOLATILITY_RATIO"):
        monkeypatch.delenv(f"NVDA_FORECAST_DRIFT__{name}")
    get_settings.cache_clear()
    fine_tuned = daily_forecast(ticker="NVDA", source="sample", as_of=LATER_AS_OF)
    assert fine_tuned.action == "finetune"
    assert "data_drift" in {alert.kind for alert in fine_tuned.alerts if alert.is_new}

    drift_retrain = daily_forecast(ticker="NVDA", source="sample", as_of=dt.date(2005, 1, 14))
    assert drift_retrain.action == "retrain"
    assert drift_retrain.reason.startswith("drift alert open: data_drift")

    # The alert may stay open, but the retrain answered it: no retrain every day.
    after = daily_forecast(ticker="NVDA", source="sample", as_of=dt.date(2005, 1, 21))
    assert after.action == "finetune"
