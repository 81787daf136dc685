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


def test_first_run_retrains_rerun_is_idempotent_later_run_fine_tunes(flow_settings, tmp_path):
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
